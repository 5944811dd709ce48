import { z } from 'zod';
import { environmentOption, flag, type ExecutorOptionsDefinition } from './options.ts';

const restoreOptionsShape = {
  environment: environmentOption('restore'),
  from: z.string().min(1).optional().meta({
    description:
      'The backup to restore (backup-YYYYMMDD-HHMMSS[-label]). Default: the newest verified backup of the environment.',
    'x-priority': 'important',
  }),
  beforeMigration: z.string().min(1, 'a migration name (as list-backups shows it)').optional().meta({
    description:
      'Restore the newest verified pre-migration backup taken while this migration was still pending (its name as the migration table records it; drizzle: the journal tag). Not with --from.',
  }),
  targetConnectionStringEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name such as STAGING_COPY_URL')
    .optional()
    .meta({
      description:
        "Restore into the database whose URL is in this environment variable instead of the environment's own.",
    }),
  yes: flag(
    'Confirm without asking. Required for protected environments without a terminal; on a terminal they ask for the database name.',
  ),
  force: flag('PostgreSQL: terminate other sessions on the target so the restored copy can be swapped in.'),
  skipSafetyBackup: flag('Do not back up the target first (refused for protected environments).'),
};

export const restoreOptionsSchema = z.object(restoreOptionsShape);

export type RestoreOptions = z.input<typeof restoreOptionsSchema>;

export const RESTORE_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'restore',
  title: 'RestoreExecutorOptions',
  description:
    'Restores a backup: verifies it, takes a safety backup of the target, loads it into a scratch database, checks it and swaps it in, so a failure leaves the target as it was.',
  shape: restoreOptionsShape,
};
