import type { ExecutorContext } from '@nx/devkit';
import { pinBackup } from '../../src/operations/pin.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { PinBackupExecutorOptions } from './schema';

export default async function pinBackupExecutor(
  options: PinBackupExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, pinBackup);
}
