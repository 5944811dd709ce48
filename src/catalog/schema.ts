import { z } from 'zod';
import { BACKUP_ID_PATTERN } from '../util/ids.ts';
import { BACKUP_FORMATS_ALL } from './formats.ts';

export const BACKUP_STATUSES = ['valid', 'verification_failed', 'missing'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

const isoDate = z.string().datetime({ offset: true });

export const migrationStateSchema = z.object({
  tool: z.string(),
  table: z.string().nullable(),
  applied_count: z.number().int().nonnegative(),
  last_migration: z.string().nullable(),
  migrations_list: z.array(z.string()),
  /** Pre-migration backups: the migrations in the project's folder that the table did not list yet. */
  pending: z.array(z.string()).optional(),
  /** Why `pending` could not be told (no tool, no migrations folder, ...), when it could not. */
  pending_unknown_reason: z.string().optional(),
});
export type MigrationState = z.infer<typeof migrationStateSchema>;

export const verificationSchema = z.object({
  integrity_check: z.enum(['passed', 'failed', 'not_run']),
  file_readable: z.boolean(),
  file_exists: z.boolean(),
  verified_at: isoDate.nullable(),
  restore_test: z
    .object({
      status: z.enum(['passed', 'failed']),
      tested_at: isoDate,
      duration_ms: z.number().nonnegative(),
      details: z.string().optional(),
    })
    .nullable(),
  checks: z.array(z.string()).optional(),
});
export type Verification = z.infer<typeof verificationSchema>;

/** The database a backup was taken of: the server it lives on and its name. */
export const sourceSchema = z.object({
  engine: z.enum(['postgresql', 'mysql', 'sqlite']),
  /** Host name, or the Unix socket path; null for SQLite. */
  host: z.string().nullable(),
  /** The port (the engine's default when the URL gave none); null for sockets and SQLite. */
  port: z.number().int().positive().nullable(),
  /** Database name; SQLite: the file's path (relative to the workspace root when inside it). */
  database: z.string(),
  /**
   * True when this was the database the environment's connection_string_env pointed at; false for
   * a backup of another database filed under the environment (the pre-restore safety backup of a
   * --targetConnectionStringEnv target). Only true ones are restored by default and count for
   * cleanup's newest-verified and min_keep.
   */
  environment_database: z.boolean(),
});
export type BackupSource = z.infer<typeof sourceSchema>;

/** Where a backup was taken from: the commit, the CI run and the Nx task, when known. */
export const provenanceSchema = z.object({
  git_commit: z.string().nullable(),
  ci_run: z.object({ provider: z.string(), id: z.string(), url: z.string().nullable() }).nullable(),
  nx_task: z.string().nullable(),
});
export type Provenance = z.infer<typeof provenanceSchema>;

/** One backup, as the catalog (backups.json) and its sidecar manifest (<id>.manifest.json) record it. */
export const backupEntrySchema = z.object({
  backup_id: z.string().regex(BACKUP_ID_PATTERN),
  project: z.string(),
  environment: z.string(),
  provider: z.enum(['postgresql', 'mysql', 'sqlite']),
  database_name: z.string(),
  /**
   * Missing in catalogs written before it was recorded: see isEnvironmentDatabase in
   * catalog/source.ts for how such entries are treated.
   */
  source: sourceSchema.optional(),
  created_at: isoDate,
  label: z.string().nullable(),
  reason: z.string().nullable(),
  /** Relative to the workspace root, with forward slashes. */
  file_path: z.string(),
  size_bytes: z.number().int().nonnegative(),
  /** Bytes the dump tool produced before compression. */
  uncompressed_bytes: z.number().int().nonnegative(),
  compressed: z.boolean(),
  compression: z.enum(['zstd', 'gzip', 'none']),
  compression_ratio: z.number().nonnegative(),
  format: z.enum(BACKUP_FORMATS_ALL),
  backup_method: z.string(),
  checksum: z.object({
    algorithm: z.literal('sha256'),
    /** SHA-256 of the bytes on disk (single-file formats), so `sha256sum <file>` matches. */
    value: z.string().regex(/^[0-9a-f]{64}$/),
    /** SHA-256 of the uncompressed dump: verify checks that the decoded stream still yields it. */
    content_value: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** Directory format: one checksum per file, keyed by its path inside the directory. */
    files: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)).optional(),
  }),
  /** Client-side encryption of the file (absent: not encrypted). Fingerprints only, never a key. */
  encryption: z
    .object({
      type: z.literal('age'),
      /** SHA-256 fingerprints (16 hex digits) of the age recipients the file was encrypted for. */
      recipients: z.array(z.string().regex(/^[0-9a-f]{16}$/)).min(1),
      /** The variable the private key is read from (its name, never its value). */
      identity_env: z.string(),
    })
    .optional(),
  tool_versions: z.object({ client: z.string(), server: z.string() }),
  migrations: migrationStateSchema,
  /** Exact row count per table in the backed-up snapshot, for restore drills. */
  table_row_counts: z.record(z.string(), z.number().int().nonnegative()).optional(),
  retention_days: z.number().int().positive(),
  expires_at: isoDate,
  status: z.enum(BACKUP_STATUSES),
  pinned: z.boolean(),
  verification: verificationSchema,
  duration_ms: z.number().nonnegative(),
  created_by: z.string(),
  tags: z.array(z.string()),
  provenance: provenanceSchema.optional(),
});
export type BackupEntry = z.infer<typeof backupEntrySchema>;

export const catalogSchema = z.object({
  schema_version: z.literal('1.0'),
  backups: z.array(backupEntrySchema),
});
export type CatalogFile = z.infer<typeof catalogSchema>;

/** The sidecar `<id>.manifest.json` beside each backup: its catalog entry, so the catalog can be rebuilt. */
export const manifestSchema = z.object({
  schema_version: z.literal('1.0'),
  backup: backupEntrySchema,
});
export type ManifestFile = z.infer<typeof manifestSchema>;
