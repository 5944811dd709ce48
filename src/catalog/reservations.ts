import type { Storage } from '../storage/storage.ts';

/** Where claimed ids are marked; one empty object per id. */
export const RESERVATIONS_DIR = '.reservations';

/** An id's second can never come round again, so a day-old mark protects nothing. */
const MARK_LIFETIME_MS = 24 * 60 * 60 * 1000;

export interface Reservation {
  id: string;
  /** Frees the id again (for a backup that failed and recorded nothing). */
  release: () => Promise<void>;
}

/**
 * Claims the first free id of `candidates` across the whole store. All projects share one
 * catalog keyed by id, and two projects backing up in the same second would otherwise pick the
 * same id in their own directories. The mark is created exclusively (create-only put), so
 * concurrent processes never get the same id; `claimLocal` then claims the backup's own names
 * the same way and returns false when one is taken.
 */
export async function reserveId(
  storage: Storage,
  candidates: Iterable<string>,
  claimLocal: (id: string) => Promise<boolean>,
): Promise<Reservation | undefined> {
  await sweepOldMarks(storage);
  for (const id of candidates) {
    const mark = `${RESERVATIONS_DIR}/${id}`;
    if (!(await storage.putIfAbsent(mark, ''))) continue;
    if (await claimLocal(id)) return { id, release: () => storage.delete(mark) };
    await storage.delete(mark);
  }
  return undefined;
}

async function sweepOldMarks(storage: Storage): Promise<void> {
  const cutoff = Date.now() - MARK_LIFETIME_MS;
  for (const mark of await storage.list(`${RESERVATIONS_DIR}/`, { shallow: true })) {
    if (mark.modifiedMs < cutoff) await storage.delete(mark.key);
  }
}
