// The password runs to the last "@" of the authority, so an unencoded "@" in it is hidden too.
const URL_WITH_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]*):([^\s/?#]*)@/gi;

/** `postgres://app:secret@db/app` → `postgres://app:***@db/app`. Works on whole messages too. */
export function redactUrls(text: string): string {
  return text.replace(URL_WITH_PASSWORD, (_match, scheme: string, user: string) => `${scheme}${user}:***@`);
}

/** Removes every occurrence of each secret (and its URL-encoded form) from a text. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  // Known secrets first: a URL pattern can mistake where an unencoded password ends.
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) {
      out = out.split(form).join('***');
    }
  }
  return redactUrls(out);
}
