import { BACKUP_EXECUTOR_OPTIONS } from './backup-options.ts';
import { CLEANUP_EXECUTOR_OPTIONS } from './cleanup-options.ts';
import { DELETE_EXECUTOR_OPTIONS } from './delete-options.ts';
import { LIST_EXECUTOR_OPTIONS } from './list-options.ts';
import type { ExecutorOptionsDefinition } from './options.ts';
import { PIN_EXECUTOR_OPTIONS } from './pin-options.ts';
import { RESTORE_EXECUTOR_OPTIONS } from './restore-options.ts';
import { VERIFY_EXECUTOR_OPTIONS } from './verify-options.ts';

/** Every executor's options: scripts/generate.ts writes executors/<executor>/schema.json from these. */
export const EXECUTOR_OPTIONS: readonly ExecutorOptionsDefinition[] = [
  BACKUP_EXECUTOR_OPTIONS,
  VERIFY_EXECUTOR_OPTIONS,
  LIST_EXECUTOR_OPTIONS,
  DELETE_EXECUTOR_OPTIONS,
  PIN_EXECUTOR_OPTIONS,
  CLEANUP_EXECUTOR_OPTIONS,
  RESTORE_EXECUTOR_OPTIONS,
];
