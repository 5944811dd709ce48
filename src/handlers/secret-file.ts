import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** A private (0600) file holding credentials for one client-tool run. */
export interface SecretFile {
  path: string;
  /** Deletes the file; safe to call more than once. */
  remove(): Promise<void>;
}

/** Names of the private files handlers leave in their temp directory: `faber-<kind>-<pid>-<hex>`. */
const OWNED_FILE = /^faber-(pgpass|my|sqlite)-(\d+)-[0-9a-f]+(\.sqlite)?$/;
/**
 * Tools read credential files only while connecting; after this long a file of a process that no
 * longer exists is garbage, even if the directory is shared with another host (other pids).
 */
const ABANDONED_AFTER_MS = 60_000;

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes files a killed run left behind (a password file, a SQLite copy): their process is gone. */
export async function sweepAbandonedFiles(directory: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(OWNED_FILE.exec(name)?.[2]);
    if (!pid || pid === process.pid || isRunning(pid)) continue;
    const filePath = path.join(directory, name);
    const modified = await stat(filePath).then(
      (stats) => stats.mtimeMs,
      () => Date.now(),
    );
    if (Date.now() - modified > ABANDONED_AFTER_MS) await rm(filePath, { force: true });
  }
}

/** A unique name for a private file of this process in `directory`. */
export function ownedFileName(directory: string, kind: 'pgpass' | 'my' | 'sqlite', extension = ''): string {
  return path.join(directory, `faber-${kind}-${process.pid}-${randomBytes(6).toString('hex')}${extension}`);
}

/**
 * Writes `content` to a new file only the current user can read. `wx` refuses to follow or
 * reuse an existing path, so a planted symlink cannot redirect the secret.
 */
export async function writeSecretFile(directory: string, kind: 'pgpass' | 'my', content: string): Promise<SecretFile> {
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await sweepAbandonedFiles(directory);
  const filePath = ownedFileName(directory, kind);
  await writeFile(filePath, content, { mode: 0o600, flag: 'wx' });
  let removed: Promise<void> | undefined;
  return {
    path: filePath,
    remove: () => (removed ??= rm(filePath, { force: true })),
  };
}
