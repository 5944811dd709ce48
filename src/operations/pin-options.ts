import { z } from 'zod';
import { environmentOption, flag, type ExecutorOptionsDefinition } from './options.ts';

const pinOptionsShape = {
  environment: environmentOption('pin-backup'),
  backupId: z
    .string({ error: 'the id of the backup to pin is required' })
    .min(1)
    .meta({ description: 'The backup to pin (backup-YYYYMMDD-HHMMSS[-label]).', 'x-priority': 'important' }),
  unpin: flag('Take the pin off: cleanup may then delete the backup under the retention rules.'),
};

export const pinOptionsSchema = z.object(pinOptionsShape);

export type PinBackupOptions = z.input<typeof pinOptionsSchema>;

export const PIN_EXECUTOR_OPTIONS: ExecutorOptionsDefinition = {
  executor: 'pin-backup',
  title: 'PinBackupExecutorOptions',
  description: 'Pins a backup so that cleanup never deletes it, or unpins it with --unpin.',
  shape: pinOptionsShape,
};
