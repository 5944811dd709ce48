import type { ExecutorContext } from '@nx/devkit';
import { restoreBackup } from '../../src/operations/restore.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { RestoreExecutorOptions } from './schema';

export default async function restoreExecutor(
  options: RestoreExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, restoreBackup);
}
