import { z } from 'zod';
import { environmentOption, flag, type ExecutorOptionsDefinition } from './options.ts';

const deleteOptionsShape = {
  environment: environmentOption('delete-backup'),
  backupId: z
    .string({ error: 'the id of the backup to delete is required' })
    .min(1)
    .meta({ description: 'The backup to delete (backup-YYYYMMDD-HHMMSS[-label]).', 'x-priority': 'important' }),
  yes: flag('Confirm without asking (protected environments). Required there without a terminal.'),
  force: flag('Delete a pinned backup.'),
};

export const deleteOptionsSchema = z.object(deleteOptionsShape);

export type DeleteBackupOptions = z.input<typeof deleteOptionsSchema>;

export const DELETE_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'delete-backup',
  title: 'DeleteBackupExecutorOptions',
  description: 'Deletes one backup: its catalog entry, its manifest and its file.',
  shape: deleteOptionsShape,
};
