import { open, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ensurePrivateDir } from './atomic-file.ts';

/** Where claimed ids are marked; one empty file per id. */
export const RESERVATIONS_DIR = '.reservations';

/** An id's second can never come round again, so a day-old mark protects nothing. */
const MARK_LIFETIME_MS = 24 * 60 * 60 * 1000;

export interface Reservation {
  id: string;
  /** Frees the id again (for a backup that failed and recorded nothing). */
  release(): Promise<void>;
}

/**
 * Claims the first free id of `candidates` across the whole backup root. All projects share one
 * catalog keyed by id, and two projects backing up in the same second would otherwise pick the
 * same id in their own directories. The mark is created exclusively (O_EXCL), so concurrent
 * processes never get the same id; `claimLocal` then creates the backup's own .partial the same
 * way and returns false when that name is taken.
 */
export async function reserveId(
  backupRoot: string,
  candidates: Iterable<string>,
  claimLocal: (id: string) => Promise<boolean>,
): Promise<Reservation | undefined> {
  const dir = path.join(backupRoot, RESERVATIONS_DIR);
  await ensurePrivateDir(dir);
  await sweepOldMarks(dir);
  for (const id of candidates) {
    const mark = path.join(dir, id);
    try {
      await (await open(mark, 'wx', 0o600)).close();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw error;
    }
    if (await claimLocal(id)) return { id, release: () => rm(mark, { force: true }) };
    await rm(mark, { force: true });
  }
  return undefined;
}

async function sweepOldMarks(dir: string): Promise<void> {
  const cutoff = Date.now() - MARK_LIFETIME_MS;
  for (const name of await readdir(dir)) {
    const mark = path.join(dir, name);
    const info = await stat(mark).catch(() => undefined);
    if (info && info.mtimeMs < cutoff) await rm(mark, { force: true });
  }
}
