import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A private (0600) file holding credentials for one client-tool run. */
export interface SecretFile {
  path: string;
  /** Deletes the file; safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * Writes `content` to a new file only the current user can read. `wx` refuses to follow or
 * reuse an existing path, so a planted symlink cannot redirect the secret.
 */
export async function writeSecretFile(directory: string, prefix: string, content: string): Promise<SecretFile> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const filePath = path.join(directory, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeFile(filePath, content, { mode: 0o600, flag: 'wx' });
  let removed: Promise<void> | undefined;
  return {
    path: filePath,
    remove: () => (removed ??= rm(filePath, { force: true })),
  };
}
