import type { BackupEntry, Verification } from '../../src/catalog/schema.ts';

const DAY_MS = 86_400_000;
let sequence = 0;

export interface EntryOverrides extends Partial<Omit<BackupEntry, 'verification'>> {
  verification?: Partial<Verification>;
}

/** `backup-YYYYMMDD-HHMMSS` for an ISO timestamp, in UTC. */
export function idStampFor(createdAt: string): string {
  const iso = new Date(createdAt).toISOString();
  return `backup-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}

/**
 * A valid catalog entry for tests. Fields that depend on others (backup_id, file_path,
 * expires_at) are derived from the overrides unless given; ids get a unique suffix so
 * entries created in the same second never collide.
 */
export function makeEntry(overrides: EntryOverrides = {}): BackupEntry {
  sequence += 1;
  const project = overrides.project ?? 'app';
  const environment = overrides.environment ?? 'production';
  const createdAt = overrides.created_at ?? '2025-01-15T10:00:00.000Z';
  const retentionDays = overrides.retention_days ?? 90;
  const backupId = overrides.backup_id ?? `${idStampFor(createdAt)}-t${sequence}`;
  const { verification, ...rest } = overrides;
  return {
    backup_id: backupId,
    project,
    environment,
    provider: 'postgresql',
    database_name: 'app',
    created_at: createdAt,
    label: null,
    reason: null,
    file_path: `.fractary/plugins/faber-db/backups/${project}/${environment}/${backupId}.sql.zst`,
    size_bytes: 1024,
    uncompressed_bytes: 4096,
    compressed: true,
    compression: 'zstd',
    compression_ratio: 0.25,
    format: 'sql',
    backup_method: 'pg_dump',
    checksum: { algorithm: 'sha256', value: 'a'.repeat(64) },
    tool_versions: { client: '15.8', server: '15.8' },
    migrations: { tool: 'none', table: null, applied_count: 0, last_migration: null, migrations_list: [] },
    retention_days: retentionDays,
    expires_at: new Date(Date.parse(createdAt) + retentionDays * DAY_MS).toISOString(),
    status: 'valid',
    pinned: false,
    verification: {
      integrity_check: 'passed',
      file_readable: true,
      file_exists: true,
      verified_at: createdAt,
      restore_test: null,
      ...verification,
    },
    duration_ms: 1500,
    created_by: 'test',
    tags: [],
    ...rest,
  };
}
