import type { Catalog } from '../catalog/catalog.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import type { Storage } from '../storage/storage.ts';
import { FaberError, toFaberError } from '../output/errors.ts';
import { humanBytes } from '../output/format.ts';
import { success, type OperationResult } from '../output/result.ts';
import { requireConfirmation } from './confirm.ts';
import { openWorkspace, type OperationContext } from './context.ts';
import { parseOptions } from './options.ts';
import { deleteOptionsSchema, type DeleteBackupOptions } from './delete-options.ts';
import { BANNER_TITLE, runOperation } from './run.ts';
import { backupKey, findBackup, readEntries, type BackupScope } from './select.ts';

export type { DeleteBackupOptions } from './delete-options.ts';

export interface DeleteResultData {
  backup_id: string;
  environment: string;
  file_path: string;
  size_bytes: number;
  size_human: string;
  pinned: boolean;
}

/** Deletes one backup: its catalog entry, its manifest and its file (or directory). */
export async function deleteBackup(
  rawOptions: DeleteBackupOptions,
  ctx: OperationContext,
): Promise<OperationResult<DeleteResultData>> {
  const scope = { operation: 'delete-backup', project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment,
    Operation: 'delete-backup',
    Backup: rawOptions.backupId,
  });
  return runOperation<DeleteResultData>(scope, ctx, async () => {
    const options = parseOptions(deleteOptionsSchema, rawOptions, 'delete-backup');
    const workspace = await openWorkspace(ctx, options.environment);
    const backupScope = { project: ctx.projectName, environment: workspace.environment.name };
    const { entries } = await readEntries(workspace.catalog, ctx);
    const entry = findBackup(entries, options.backupId, backupScope, 'delete-backup');
    const key = backupKey(workspace.catalog.storage, entry);
    refuseIfPinned(entry, options.force, backupScope);
    if (entry.pinned) ctx.reporter.warn(`${entry.backup_id} is pinned; deleting it because of --force`);
    if (workspace.environment.isProtected) {
      await requireConfirmation(ctx, {
        yes: options.yes,
        question: `Delete backup ${entry.backup_id} (${humanBytes(entry.size_bytes)}, created ${entry.created_at}) of the protected environment ${entry.environment}?`,
        command: `nx run ${ctx.projectName}:delete-backup:${entry.environment} --backupId=${entry.backup_id}${options.force ? ' --force' : ''}`,
        result: { backup_id: entry.backup_id, environment: entry.environment },
      });
    }
    await removeCatalogEntry(workspace.catalog, entry.backup_id, options.force, backupScope);
    ctx.reporter.step('Catalog entry and manifest removed');
    await removeBackupFile(workspace.catalog.storage, key, entry, backupScope);
    ctx.reporter.step(`Backup ${entry.format === 'directory' ? 'directory' : 'file'} deleted: ${entry.file_path}`);
    ctx.reporter.complete(BANNER_TITLE, {
      Environment: entry.environment,
      Deleted: entry.backup_id,
      Freed: humanBytes(entry.size_bytes),
    });
    const data = {
      backup_id: entry.backup_id,
      environment: entry.environment,
      file_path: entry.file_path,
      size_bytes: entry.size_bytes,
      size_human: humanBytes(entry.size_bytes),
      pinned: entry.pinned,
    };
    return success(scope, data, `Backup ${entry.backup_id} deleted`);
  });
}

function refuseIfPinned(entry: BackupEntry, force: boolean | undefined, scope: BackupScope): void {
  if (!entry.pinned || force) return;
  throw new FaberError('BACKUP_PROTECTED', `Backup ${entry.backup_id} is pinned; it is only deleted with --force`, {
    result: { backup_id: entry.backup_id, pinned: true },
    suggestions: [
      `If you are sure: nx run ${scope.project}:delete-backup:${entry.environment} --backupId=${entry.backup_id} --force`,
    ],
  });
}

/**
 * The entry goes first (under the catalog lock; the catalog removes its manifest after saving),
 * the file last. A crash in between leaves a file nobody points to, which cleanup-backups finds
 * and reports as an orphan; the reverse order could leave an entry reported as valid whose file
 * is gone, and a restore would pick it.
 */
async function removeCatalogEntry(
  catalog: Catalog,
  id: string,
  force: boolean | undefined,
  scope: BackupScope,
): Promise<void> {
  await catalog.update((entries) => {
    const index = entries.findIndex((entry) => entry.backup_id === id);
    const current = entries[index];
    if (current === undefined) {
      throw new FaberError('BACKUP_NOT_FOUND', `Backup ${id} was removed from the catalog by another process`, {
        result: { backup_id: id },
        suggestions: [
          `List what is left: nx run ${scope.project}:list-backups${scope.environment ? `:${scope.environment}` : ''}`,
        ],
      });
    }
    // Pinned while we were asking for confirmation.
    refuseIfPinned(current, force, scope);
    entries.splice(index, 1);
  });
}

async function removeBackupFile(storage: Storage, key: string, entry: BackupEntry, scope: BackupScope): Promise<void> {
  try {
    await storage.delete(key);
  } catch (error) {
    const cause = toFaberError(error, 'IO_ERROR');
    throw new FaberError(
      cause.code,
      `The catalog entry of ${entry.backup_id} was removed, but its file could not be deleted: ${cause.message}`,
      {
        cause: error,
        result: { backup_id: entry.backup_id, file_path: entry.file_path },
        suggestions: [
          `Delete the leftover file with: nx run ${scope.project}:cleanup-backups:${entry.environment} --yes`,
          `Or by hand: rm -r ${entry.file_path}`,
        ],
      },
    );
  }
}
