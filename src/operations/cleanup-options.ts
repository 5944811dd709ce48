import { z } from 'zod';
import { environmentOption, flag, type ExecutorOptionsDefinition } from './options.ts';

const cleanupOptionsShape = {
  environment: environmentOption('cleanup-backups', true),
  dryRun: flag('Print the plan (what goes, what stays and why) and change nothing.', 'important'),
  olderThan: z.number().int('a whole number of days').nonnegative().max(36500).optional().meta({
    description:
      'Delete backups created more than this many days ago instead of those past their expiry date (the same exceptions apply).',
  }),
  yes: flag('Confirm deletions in protected environments (required there without a terminal) and repair orphans.'),
};

export const cleanupOptionsSchema = z.object(cleanupOptionsShape);

export type CleanupBackupsOptions = z.input<typeof cleanupOptionsSchema>;

export const CLEANUP_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'cleanup-backups',
  title: 'CleanupBackupsExecutorOptions',
  description:
    'Deletes expired backups (keeping protected labels, pinned backups, young safety backups, the newest verified backup and min_keep verified ones) and reports orphaned files and entries.',
  shape: cleanupOptionsShape,
};
