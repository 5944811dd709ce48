import { z } from 'zod';
import { environmentOption, flag, type ExecutorOptionsDefinition } from './options.ts';

const verifyOptionsShape = {
  environment: environmentOption('verify-backup'),
  backupId: z.string().min(1).optional().meta({
    description: 'The backup to check (backup-YYYYMMDD-HHMMSS[-label]). Default: the newest backup of the environment.',
    'x-priority': 'important',
  }),
  all: flag('Check every backup of the environment.'),
  deep: flag(
    'Restore drill: restore into a scratch database (or temp SQLite file), compare tables, row counts and migration state with the record, then drop it.',
  ),
};

export const verifyOptionsSchema = z
  .object(verifyOptionsShape)
  .refine((options) => !(options.all && options.backupId), {
    message: 'give either --backupId or --all, not both',
    path: ['all'],
  });

export type VerifyBackupOptions = z.input<typeof verifyOptionsSchema>;

export const VERIFY_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'verify-backup',
  title: 'VerifyBackupExecutorOptions',
  description:
    'Re-checks a backup against the catalog: existence, size, SHA-256, a full decode of the compressed stream and the format; --deep also restores it into a throwaway database and compares tables, row counts and migrations.',
  shape: verifyOptionsShape,
};
