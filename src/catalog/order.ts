import type { BackupEntry } from './schema.ts';

/** The catalog's order: oldest first, ties broken by id, so the file diffs cleanly. */
export function compareEntries(a: BackupEntry, b: BackupEntry): number {
  return compareKeys(Date.parse(a.created_at), a.backup_id, Date.parse(b.created_at), b.backup_id);
}

/** Sorts in place, oldest first, and returns the same array. Parses each date once, not per comparison. */
export function sortEntries(entries: BackupEntry[]): BackupEntry[] {
  const keyed = entries.map((entry) => ({ entry, time: Date.parse(entry.created_at) }));
  const inOrder = (a: (typeof keyed)[number], b: (typeof keyed)[number]) =>
    compareKeys(a.time, a.entry.backup_id, b.time, b.entry.backup_id);
  keyed.sort(inOrder);
  keyed.forEach(({ entry }, index) => {
    entries[index] = entry;
  });
  return entries;
}

function compareKeys(timeA: number, idA: string, timeB: number, idB: string): number {
  if (timeA !== timeB) return timeA - timeB;
  return idA < idB ? -1 : idA > idB ? 1 : 0;
}
