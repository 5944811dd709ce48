import { z } from 'zod';
import { BACKUP_STATUSES } from '../catalog/schema.ts';
import { environmentOption, type ExecutorOptionsDefinition } from './options.ts';

const listOptionsShape = {
  environment: environmentOption('list-backups', true),
  sort: z
    .enum(['desc', 'asc'])
    .optional()
    .meta({ default: 'desc', description: 'Newest first (desc) or oldest first (asc).' }),
  limit: z
    .number()
    .int('a whole number')
    .positive('at least 1')
    .optional()
    .meta({ description: 'Show at most this many backups.' }),
  status: z.enum(BACKUP_STATUSES).optional().meta({ description: 'Only backups with this status.' }),
};

export const listOptionsSchema = z.object(listOptionsShape);

export type ListBackupsOptions = z.input<typeof listOptionsSchema>;

export const LIST_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'list-backups',
  title: 'ListBackupsExecutorOptions',
  description:
    "Lists the project's backups from the catalog: a table for people, { status, result: { backups } } with --json.",
  shape: listOptionsShape,
};
