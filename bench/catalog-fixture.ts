/**
 * A catalog of many backups, shaped like real entries (row counts of a dozen tables, a few dozen
 * migrations, checks), for timing list-backups and cleanup planning.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { catalogSchema, type BackupEntry } from '../src/catalog/schema.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const TABLES = [
  'orders',
  'order_items',
  'customers',
  'addresses',
  'products',
  'prices',
  'invoices',
  'payments',
  'refunds',
  'shipments',
  'audit_log',
  '_prisma_migrations',
];
const MIGRATIONS = Array.from(
  { length: 40 },
  (_, i) => `2024${String(1 + (i % 12)).padStart(2, '0')}${String(1 + i).padStart(2, '0')}120000_change_${i + 1}`,
);
const REASONS = [null, null, null, 'pre-migration', 'scheduled', 'pre-restore'];
const LABELS = [null, null, 'nightly', 'pre-migration', 'manual', null];

function stamp(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}

/** Entry `i` of `count`, one every hour going back from `newest`. */
function entry(
  directory: string,
  project: string,
  environment: string,
  i: number,
  count: number,
  newest: number,
): BackupEntry {
  const created = new Date(newest - (count - 1 - i) * HOUR_MS);
  const label = LABELS[i % LABELS.length] ?? null;
  const reason = REASONS[i % REASONS.length] ?? null;
  const backupId = `backup-${stamp(created)}${label ? `-${label}` : ''}`;
  const size = 200_000_000 + ((i * 7919) % 50_000_000);
  const applied = 20 + Math.floor((i / count) * 20);
  return {
    backup_id: backupId,
    project,
    environment,
    provider: 'postgresql',
    database_name: 'app',
    created_at: created.toISOString(),
    label,
    reason,
    file_path: `${directory}/${project}/${environment}/${backupId}.sql.zst`,
    size_bytes: size,
    uncompressed_bytes: Math.round(size / 0.36),
    compressed: true,
    compression: 'zstd',
    compression_ratio: 0.36,
    format: 'sql',
    backup_method: 'pg_dump',
    checksum: {
      algorithm: 'sha256',
      value: (i.toString(16).padStart(8, '0') + 'ab').repeat(7).slice(0, 64),
      content_value: 'cd'.repeat(32),
    },
    tool_versions: { client: 'pg_dump 15.20', server: '15.20' },
    migrations: {
      tool: 'prisma',
      table: '_prisma_migrations',
      applied_count: applied,
      last_migration: MIGRATIONS[applied - 1] ?? null,
      migrations_list: MIGRATIONS.slice(0, applied),
    },
    table_row_counts: Object.fromEntries(TABLES.map((table, t) => [`public.${table}`, 1000 * (t + 1) + i])),
    retention_days: 30,
    expires_at: new Date(created.getTime() + 30 * DAY_MS).toISOString(),
    status: 'valid',
    pinned: i % 500 === 0,
    verification: {
      integrity_check: 'passed',
      file_readable: true,
      file_exists: true,
      verified_at: created.toISOString(),
      restore_test: null,
      checks: [
        'file checksum (sha256) matches',
        'decoded content checksum matches',
        'dump trailer present (dump completed)',
      ],
    },
    duration_ms: 8000 + (i % 1000),
    created_by: '@faber-db/nx@0.1.0 (bench)',
    tags: [environment, ...(reason ? [reason] : [])],
  };
}

/**
 * Writes `<workspaceRoot>/<directory>/backups.json` with `count` entries of one project and
 * environment, validated by the catalog schema. `directory` is the config's backup.directory.
 */
export function writeLargeCatalog(
  workspaceRoot: string,
  directory: string,
  project: string,
  environment: string,
  count: number,
): string {
  const backupRoot = path.join(workspaceRoot, directory);
  const newest = Date.now() - HOUR_MS;
  const backups = Array.from({ length: count }, (_, i) => entry(directory, project, environment, i, count, newest));
  const catalog = catalogSchema.parse({ schema_version: '1.0', backups });
  mkdirSync(backupRoot, { recursive: true, mode: 0o700 });
  const file = path.join(backupRoot, 'backups.json');
  writeFileSync(file, `${JSON.stringify(catalog, null, 2)}\n`, { mode: 0o600 });
  return file;
}
