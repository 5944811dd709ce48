import type { ExecutorContext } from '@nx/devkit';
import { createBackup } from '../../src/operations/backup.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { BackupExecutorOptions } from './schema';

export default async function backupExecutor(
  options: BackupExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, createBackup);
}
