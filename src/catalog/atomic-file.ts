import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { faultPoint } from '../util/fault.ts';

/** Creates `dir` and any missing parents with mode 0700 (backups hold whole databases). */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
}

/** A unique sibling name for the temporary file, so concurrent writers never share one. */
export function tempPathFor(target: string): string {
  return `${target}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Replaces `target` with `data` so that readers see either the old or the new content, never a
 * mix, and a crash or failure at any point leaves the old file as it was: the data goes to a
 * temporary sibling, is fsynced, renamed over the target, and the directory is fsynced so the
 * rename itself survives a power loss.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const temp = tempPathFor(target);
  try {
    await writeAndSync(temp, data, mode);
    faultPoint(`atomic-write:${path.basename(target)}`);
    await fs.rename(temp, target);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(path.dirname(target));
}

async function writeAndSync(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  const handle = await fs.open(file, 'wx', mode);
  try {
    // open() applies the umask; chmod makes the mode exactly what was asked for.
    await handle.chmod(mode);
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Platforms that cannot open or fsync a directory (Windows) just skip this step. */
const UNSUPPORTED_DIRECTORY_SYNC = new Set(['EISDIR', 'EPERM', 'EINVAL', 'EACCES']);

export async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!UNSUPPORTED_DIRECTORY_SYNC.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}
