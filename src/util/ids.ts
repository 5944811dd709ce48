import { FaberError } from '../output/errors.ts';

const MAX_LABEL_LENGTH = 64;

/**
 * `backup-YYYYMMDD-HHMMSS`, then the label's words (lowercase letters and digits) each after one dash. The
 * one definition of a backup id: the catalog schema, manifests, the orphan scan and id options all use it.
 */
export const BACKUP_ID_SOURCE = String.raw`backup-\d{8}-\d{6}(?:-[a-z0-9]+)*`;
export const BACKUP_ID_PATTERN = new RegExp(`^${BACKUP_ID_SOURCE}$`);
/** The id a file or directory name starts with (`<id>.sql.zst`, `<id>.partial`), as group 1. */
export const BACKUP_ID_AT_START = new RegExp(`^(${BACKUP_ID_SOURCE})`);

/** "Pre V2 Migration!" → "pre-v2-migration". Refuses labels that slug to nothing. */
export function slugLabel(label: string): string {
  const slug = label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_LABEL_LENGTH)
    .replace(/-+$/, '');
  if (!slug) {
    throw new FaberError('INVALID_OPTION', `The label "${label}" has no letters or digits to keep`, {
      result: { label },
      suggestions: ['Use a label made of letters, digits and dashes, e.g. --label=pre-v2-migration'],
    });
  }
  return slug;
}

function timestamp(date: Date): string {
  const iso = date.toISOString(); // 2025-01-24T14:00:00.000Z
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/** `backup-YYYYMMDD-HHMMSS[-label]` in UTC. */
export function backupId(date: Date, label?: string | null): string {
  return label ? `backup-${timestamp(date)}-${label}` : `backup-${timestamp(date)}`;
}

/** Rejects ids that are not ours (and so could name a path outside the backup directory). */
export function assertBackupId(id: string): string {
  if (!BACKUP_ID_PATTERN.test(id)) {
    throw new FaberError('INVALID_OPTION', `"${id}" is not a backup id`, {
      result: { backup_id: id },
      suggestions: [
        'Backup ids look like backup-20250124-140000 or backup-20250124-140000-my-label',
        'List them with the list-backups target',
      ],
    });
  }
  return id;
}
