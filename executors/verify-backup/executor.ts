import type { ExecutorContext } from '@nx/devkit';
import { verifyBackup } from '../../src/operations/verify.ts';
import { runExecutor } from '../../src/nx/run-executor.ts';
import type { VerifyBackupExecutorOptions } from './schema';

export default async function verifyBackupExecutor(
  options: VerifyBackupExecutorOptions,
  context: ExecutorContext,
): Promise<{ success: boolean }> {
  return runExecutor(options, context, verifyBackup);
}
