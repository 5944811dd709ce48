import { z } from 'zod';
import { COMPRESSIONS, FORMATS } from '../config/schema.ts';
import { environmentOption, flag, parseOptions, type ExecutorOptionsDefinition } from './options.ts';

const backupOptionsShape = {
  environment: environmentOption('backup'),
  // An empty --label is a mistake (an unset variable in `--label=$LABEL`), not a wish for no label.
  label: z
    .string()
    .min(1, 'an empty label; give one with letters or digits, or leave --label out')
    .max(200)
    .optional()
    .meta({
      description: 'Label appended to the backup id, slugged to [a-z0-9-] (e.g. pre-v2-migration).',
      'x-priority': 'important',
    }),
  reason: z.string().max(500).optional().meta({
    description:
      'Why the backup was taken (manual, scheduled, pre-migration, ...). Safety reasons (pre-migration, pre-rollback, pre-restore, pre-operation) are kept at least 90 days.',
  }),
  compression: z
    .union([z.boolean(), z.enum(COMPRESSIONS)])
    .optional()
    .meta({ description: 'zstd (default), gzip or none; true means zstd, false none. Overrides config.json.' }),
  format: z.enum(FORMATS).optional().meta({
    description:
      'PostgreSQL dump format: sql (plain), custom (pg_dump -Fc) or directory (pg_dump -Fd, parallel). MySQL: sql only. SQLite backups are database files.',
  }),
  retentionDays: z
    .number()
    .int('a whole number of days')
    .positive('at least 1 day')
    .max(36500)
    .optional()
    .meta({ description: 'Keep this backup for this many days (overrides config.json).' }),
  tags: z
    .array(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'tags of letters, digits and . _ : -'))
    .max(50)
    .optional()
    .meta({ description: 'Extra tags recorded in the catalog (comma-separated on the command line).' }),
  yes: flag(
    'Confirm without asking (large backups of environments with require_approval). Required without a terminal.',
  ),
  skipIfNotRequired: flag(
    "Succeed without a backup when the environment's backup_before_migrate is false (used by the pre-migrate-backup target).",
  ),
  skipIfNothingPending: flag(
    'Succeed without a backup when the plugin can tell that no migration is pending (migrations folder vs. migration table); when it cannot tell, it backs up. The pre-migrate-backup target sets it; set it to false there to always back up.',
  ),
  pin: flag('Pin the backup: cleanup never deletes it (unpin with the pin-backup target and --unpin).'),
};

const backupOptionsSchema = z.object(backupOptionsShape);

/** Options of a backup, as the executor and the programmatic API take them. */
export type BackupOptions = z.input<typeof backupOptionsSchema>;

export const BACKUP_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'backup',
  title: 'BackupExecutorOptions',
  description:
    "Creates a verified, cataloged backup of the project's database for one environment (the Nx configuration name by default).",
  shape: backupOptionsShape,
};

export function parseBackupOptions(options: BackupOptions): BackupOptions {
  return parseOptions(backupOptionsSchema, options, 'backup');
}
