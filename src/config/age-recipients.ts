import { createHash } from 'node:crypto';
import { bech32 } from '@scure/base';

/** bech32 `age1` + 52 data characters (32 bytes) + 6 checksum characters. */
export const AGE_X25519_RECIPIENT_PATTERN = /^age1[02-9ac-hj-np-z]{58}$/;

/** True for an age X25519 recipient: bech32 `age1…` with a valid checksum, holding a 32-byte public key. */
export function isX25519Recipient(value: string): boolean {
  if (!AGE_X25519_RECIPIENT_PATTERN.test(value)) return false;
  try {
    const decoded = bech32.decode(value as `${string}1${string}`, 100);
    return decoded.prefix === 'age' && bech32.fromWords(decoded.words).length === 32;
  } catch {
    return false;
  }
}

/**
 * A short, stable name for a recipient, shown and recorded instead of the key itself:
 * the first 16 hex digits of its SHA-256 (`printf %s age1… | sha256sum | cut -c1-16`).
 */
export function recipientFingerprint(recipient: string): string {
  return createHash('sha256').update(recipient.trim()).digest('hex').slice(0, 16);
}

/** How recipients are shown to people: `age:<fingerprint>`, never the key. */
export function describeRecipients(fingerprints: readonly string[]): string {
  return fingerprints.map((fingerprint) => `age:${fingerprint}`).join(', ');
}
