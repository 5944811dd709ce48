export const BACKUP_FORMATS_ALL = ['sql', 'custom', 'directory', 'sqlite'] as const;
export type StoredFormat = (typeof BACKUP_FORMATS_ALL)[number];
