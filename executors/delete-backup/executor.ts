import type { ExecutorContext } from '@nx/devkit';
import { deleteBackup } from '../../src/operations/delete.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { DeleteBackupExecutorOptions } from './schema';

export default async function deleteBackupExecutor(
  options: DeleteBackupExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, deleteBackup);
}
