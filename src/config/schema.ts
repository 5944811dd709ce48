import { z } from 'zod';
import { AGE_X25519_RECIPIENT_PATTERN, isX25519Recipient } from './age-recipients.ts';
import { ENVIRONMENT_NAME_PATTERN } from './environment-name.ts';

export const PROVIDERS = ['postgresql', 'mysql', 'sqlite'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const HOSTINGS = ['local', 'aws-rds', 'gcp-sql', 'azure-sql', 'supabase', 'neon', 'planetscale'] as const;

export const FORMATS = ['sql', 'custom', 'directory'] as const;
export type BackupFormat = (typeof FORMATS)[number];

export const COMPRESSIONS = ['zstd', 'gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const MIGRATION_TOOLS = ['prisma', 'knex', 'drizzle', 'typeorm', 'flyway', 'none'] as const;
export type MigrationTool = (typeof MIGRATION_TOOLS)[number];

/** Per-environment retention when neither the environment nor `backup.retention_days` sets one. */
export const DEFAULT_RETENTION_DAYS: Readonly<Record<string, number>> = { dev: 30, staging: 60, production: 90 };
export const FALLBACK_RETENTION_DAYS = 30;
export const DEFAULT_BACKUP_DIRECTORY = '.fractary/plugins/faber-db/backups';
export const DEFAULT_CONFIRM_ABOVE_BYTES = 10 * 1024 ** 3;
export const SAFETY_REASONS = ['pre-migration', 'pre-rollback', 'pre-restore', 'pre-operation'] as const;

const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as PROD_DATABASE_URL');
export const DEFAULT_IDENTITY_ENV = 'FABER_DB_AGE_IDENTITY';

const ageRecipient = z
  .string()
  .refine(
    (value) => !value.trim().toUpperCase().startsWith('AGE-SECRET-KEY-'),
    'this is a private key: it must never be in the config; put its public key (age1…) here and the private key in the identity_env variable',
  )
  .refine(
    (value) => AGE_X25519_RECIPIENT_PATTERN.test(value),
    'an age X25519 recipient: "age1" followed by 58 lower-case bech32 characters (age-keygen -y key.txt prints it)',
  )
  .refine(isX25519Recipient, 'an age X25519 recipient with a valid checksum (it looks mistyped or cut short)')
  .meta({ pattern: AGE_X25519_RECIPIENT_PATTERN.source });

export const encryptionSchema = z
  .strictObject({
    type: z.literal('age'),
    recipients: z
      .array(ageRecipient)
      .min(1, 'at least one recipient')
      .describe(
        'age public keys (age1…) that can decrypt the backups; several allowed (key rotation, team + break-glass)',
      ),
    identity_env: envVarName
      .default(DEFAULT_IDENTITY_ENV)
      .describe('The variable holding the private key (AGE-SECRET-KEY-1…), needed only to read backups'),
  })
  .describe('Client-side encryption (age v1, X25519), applied after compression');
export type EncryptionConfig = z.output<typeof encryptionSchema>;

const days = z.number().int().positive().max(36500);

const s3StorageSchema = z.strictObject({
  type: z.literal('s3'),
  bucket: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
      'an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens)',
    )
    .describe('Bucket that holds the backups and their manifests'),
  prefix: z
    .string()
    .regex(
      /^[A-Za-z0-9!_.*'()-]+(?:\/[A-Za-z0-9!_.*'()-]+)*$/,
      'a key prefix such as faber-db or team/faber-db (no leading or trailing /)',
    )
    .refine((prefix) => !prefix.split('/').includes('..'), 'no .. segments')
    .optional()
    .describe('Key prefix inside the bucket'),
  region: z.string().min(1).optional().describe('AWS region; else the AWS default chain (AWS_REGION, profile)'),
  endpoint: z
    .url({ protocol: /^https?$/ })
    .optional()
    .describe('Endpoint of an S3-compatible service (R2, MinIO, B2, ...)'),
  force_path_style: z.boolean().optional().describe('Path-style addressing (MinIO and most self-hosted servers)'),
  keep_local_copy: z.boolean().optional().describe('Also keep each backup file in backup.directory'),
});

const storageSchema = z
  .discriminatedUnion('type', [z.strictObject({ type: z.literal('local') }), s3StorageSchema])
  .describe(
    'Where backups are stored; absent means backup.directory on the local disk. Credentials come only from the AWS default chain.',
  );

export type StorageConfig = z.output<typeof storageSchema>;
export type S3StorageConfig = z.output<typeof s3StorageSchema>;

const environmentSchema = z.strictObject({
  connection_string_env: envVarName.describe('Name of the environment variable that holds the connection URL'),
  backup_before_migrate: z.boolean().default(false).describe('Take a safety backup before migrate runs'),
  retention_days: days.optional().describe('How long backups of this environment are kept'),
  require_approval: z.boolean().default(false).describe('Ask before large backups and before restores'),
  compression: z.union([z.boolean(), z.enum(COMPRESSIONS)]).optional(),
  format: z.enum(FORMATS).optional(),
  storage: storageSchema.optional().describe('Overrides backup.storage for this environment'),
  encryption: z
    .union([encryptionSchema, z.literal(false)])
    .optional()
    .describe("Overrides backup.encryption for this environment; false: this environment's backups are not encrypted"),
});

const backupSchema = z.strictObject({
  directory: z
    .string()
    .min(1)
    .default(DEFAULT_BACKUP_DIRECTORY)
    .describe('Where backups go, relative to the workspace root'),
  format: z.enum(FORMATS).default('sql'),
  compression: z
    .union([z.boolean(), z.enum(COMPRESSIONS)])
    .optional()
    .describe('true means zstd; unset means zstd (production is always compressed unless this says otherwise)'),
  compression_level: z.number().int().min(1).max(19).optional().describe('zstd level (gzip: 1-9)'),
  retention_days: days.optional(),
  protected_labels: z.array(z.string().min(1)).default(['manual', 'important']),
  min_keep: z.number().int().min(1).max(10000).default(1),
  confirm_above_bytes: z.number().int().nonnegative().default(DEFAULT_CONFIRM_ABOVE_BYTES),
  parallel_jobs: z.number().int().min(1).max(64).optional().describe('pg_dump/pg_restore -j for the directory format'),
  storage: storageSchema.optional(),
  encryption: encryptionSchema.optional(),
});

const databaseSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  hosting: z.enum(HOSTINGS).default('local'),
  migration_tool: z.enum(MIGRATION_TOOLS).optional(),
});

const migrationsSchema = z.strictObject({
  table: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_.$]*$/, 'a table name (optionally schema.table)')
    .optional(),
  directory: z.string().optional(),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    schema_version: z.literal('1.0'),
    database: databaseSchema,
    environments: z
      .record(
        z.string().regex(ENVIRONMENT_NAME_PATTERN, 'an environment name of letters, digits, - and _'),
        environmentSchema,
      )
      .refine((envs) => Object.keys(envs).length > 0, 'at least one environment'),
    backup: backupSchema.default(() => backupSchema.parse({})),
    migrations: migrationsSchema.default({}),
    safety: z
      .strictObject({ protected_environments: z.array(z.string()).default(['production']) })
      .default({ protected_environments: ['production'] }),
    verify: z
      .strictObject({
        connection_string_env: envVarName
          .optional()
          .describe('Server for restore drills (verify-backup --deep); defaults to the backed-up server'),
      })
      .default({}),
  })
  .superRefine((config, ctx) => {
    if (config.database.hosting !== 'local') {
      ctx.addIssue({
        code: 'custom',
        path: ['database', 'hosting'],
        message: `hosting "${config.database.hosting}" is not supported yet; use "local" (a database the client tools can reach)`,
      });
    }
  });

export type FaberConfigInput = z.input<typeof configSchema>;
export type FaberConfig = z.output<typeof configSchema>;
export type EnvironmentConfig = FaberConfig['environments'][string];
