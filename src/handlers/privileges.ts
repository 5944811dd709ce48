import { FaberError } from '../output/errors.ts';

/** A privilege an operation needs, and the statement an administrator runs to grant it. */
export interface MissingPrivilege {
  /** What the operation was doing: "create the scratch database for a restore". */
  action: string;
  privilege: string;
  grant: string;
}

/**
 * A PERMISSION_DENIED error made specific: which privilege, and the exact GRANT. Anything else
 * is returned unchanged, so handlers can wrap whole steps: `catch (error) { throw await hint(error) }`.
 */
export function namePrivilege(error: unknown, missing: MissingPrivilege): unknown {
  if (!(error instanceof FaberError) || error.code !== 'PERMISSION_DENIED') return error;
  return new FaberError(
    'PERMISSION_DENIED',
    `${error.message}. To ${missing.action}, the user needs ${missing.privilege}`,
    {
      result: { ...error.result, missing_privilege: missing.privilege, grant: missing.grant },
      suggestions: [
        `Grant it (as an administrator): ${missing.grant}`,
        'See "Privileges" in the README for what backup, restore and verify --deep need',
      ],
      cause: error,
    },
  );
}

export function isPermissionDenied(error: unknown): boolean {
  return error instanceof FaberError && error.code === 'PERMISSION_DENIED';
}

/** namePrivilege for a privilege that takes a query to spell out (the account name): asked only on a denial. */
export async function explainDenial(error: unknown, missing: () => Promise<MissingPrivilege>): Promise<unknown> {
  return isPermissionDenied(error) ? namePrivilege(error, await missing()) : error;
}

/** `app_prod` → `app\_prod`: MySQL grant patterns treat `_` and `%` as wildcards. */
export function mysqlGrantPattern(name: string): string {
  return name.replace(/[_%\\]/g, (character) => `\\${character}`);
}

/** `app@%` (CURRENT_USER()) → `'app'@'%'`. */
export function mysqlAccount(currentUser: string): string {
  const at = currentUser.lastIndexOf('@');
  const [user, host] = at < 0 ? [currentUser, '%'] : [currentUser.slice(0, at), currentUser.slice(at + 1)];
  return `'${user.replaceAll("'", "''")}'@'${host.replaceAll("'", "''")}'`;
}
