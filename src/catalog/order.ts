import type { BackupEntry } from './schema.ts';

/** The catalog's order: oldest first, ties broken by id, so the file diffs cleanly. */
export function compareEntries(a: BackupEntry, b: BackupEntry): number {
  const byTime = Date.parse(a.created_at) - Date.parse(b.created_at);
  if (byTime !== 0) return byTime;
  return a.backup_id < b.backup_id ? -1 : a.backup_id > b.backup_id ? 1 : 0;
}

/** Sorts in place, oldest first, and returns the same array. */
export function sortEntries(entries: BackupEntry[]): BackupEntry[] {
  return entries.sort(compareEntries);
}
