import type { ExecutorContext } from '@nx/devkit';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { CleanupBackupsExecutorOptions } from './schema';

export default async function cleanupBackupsExecutor(
  options: CleanupBackupsExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, cleanupBackups);
}
