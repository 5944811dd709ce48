import type { ResolvedEnvironment } from '../config/environment.ts';
import type { FaberConfig } from '../config/schema.ts';
import { LocalStorage } from './local.ts';
import type { Storage } from './storage.ts';

/**
 * The store an environment's backups live in: `environments.<env>.storage`, else
 * `backup.storage`, else the local backup directory. The AWS SDK is loaded only for S3.
 */
/** With `keep_local_copy`, the local directory that also gets each backup written to the bucket. */
export function localCopyStorage(
  config: FaberConfig,
  environment: ResolvedEnvironment,
  roots: { backupRoot: string; workspaceRoot: string },
): LocalStorage | undefined {
  const chosen = environment.settings.storage ?? config.backup.storage;
  return chosen?.type === 's3' && chosen.keep_local_copy
    ? new LocalStorage(roots.backupRoot, roots.workspaceRoot)
    : undefined;
}

export async function openStorage(
  config: FaberConfig,
  environment: ResolvedEnvironment | undefined,
  roots: { backupRoot: string; workspaceRoot: string },
  onWarning: (message: string) => void,
): Promise<Storage> {
  const chosen = environment?.settings.storage ?? config.backup.storage;
  if (chosen === undefined || chosen.type === 'local') return new LocalStorage(roots.backupRoot, roots.workspaceRoot);
  const { S3Storage } = await import('./s3.ts');
  return new S3Storage(chosen, { onWarning });
}
