import type { ExecutorContext } from '@nx/devkit';
import { listBackups } from '../../src/operations/list.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { ListBackupsExecutorOptions } from './schema';

export default async function listBackupsExecutor(
  options: ListBackupsExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, listBackups);
}
