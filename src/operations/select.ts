import path from 'node:path';
import type { Storage } from '../storage/storage.ts';
import { Catalog } from '../catalog/catalog.ts';
import type { BackupFile } from '../pipeline/verify.ts';
import { compareEntries } from '../catalog/order.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { FaberError } from '../output/errors.ts';
import { assertBackupId } from '../util/ids.ts';
import type { OperationContext } from './context.ts';

/** A project, and optionally one of its environments. */
export interface BackupScope {
  project: string;
  environment?: string | undefined;
}

/** The catalog's entries; a rebuild from manifests (or unusable manifests) is told to the user. */
export async function readEntries(
  catalog: Catalog,
  ctx: OperationContext,
): Promise<{ entries: BackupEntry[]; warnings: string[] }> {
  const { entries, warnings } = await catalog.read();
  for (const warning of warnings) ctx.reporter.warn(warning);
  return { entries, warnings };
}

export function inScope(entry: BackupEntry, scope: BackupScope): boolean {
  return (
    entry.project === scope.project && (scope.environment === undefined || entry.environment === scope.environment)
  );
}

export function entriesInScope(entries: readonly BackupEntry[], scope: BackupScope): BackupEntry[] {
  return entries.filter((entry) => inScope(entry, scope));
}

/** Newest first by creation time (ties by id), optionally only those matching `accept`. */
export function newestEntry(
  entries: readonly BackupEntry[],
  accept: (entry: BackupEntry) => boolean = () => true,
): BackupEntry | undefined {
  let newest: BackupEntry | undefined;
  for (const entry of entries) {
    if (accept(entry) && (newest === undefined || compareEntries(entry, newest) > 0)) newest = entry;
  }
  return newest;
}

/** The entry with this id in the scope; BACKUP_NOT_FOUND (saying where it is, if elsewhere) otherwise. */
export function findBackup(
  entries: readonly BackupEntry[],
  id: string,
  scope: BackupScope,
  target = 'list-backups',
): BackupEntry {
  assertBackupId(id);
  const sameId = entries.filter((entry) => entry.backup_id === id);
  const found = sameId.find((entry) => inScope(entry, scope));
  if (found) return found;
  const elsewhere = sameId[0];
  const where = scope.environment ? `${scope.project} (${scope.environment})` : scope.project;
  const message = elsewhere
    ? `Backup ${id} belongs to ${elsewhere.project} (${elsewhere.environment}), not to ${where}`
    : `No backup with id ${id} for ${where}`;
  throw new FaberError('BACKUP_NOT_FOUND', message, {
    result: {
      backup_id: id,
      project: scope.project,
      environment: scope.environment ?? null,
      ...(elsewhere ? { found_in: { project: elsewhere.project, environment: elsewhere.environment } } : {}),
    },
    suggestions: [
      elsewhere && elsewhere.project === scope.project
        ? `Name its environment: nx run ${scope.project}:${target}:${elsewhere.environment}`
        : `List the backups: nx run ${scope.project}:list-backups${scope.environment ? `:${scope.environment}` : ''}`,
    ],
  });
}

/** An entry's backup as the pipeline reads it: a local path, or a remote object streamed from the store. */
export async function backupFileOf(
  catalog: Pick<Catalog, 'storage'>,
  entry: Pick<BackupEntry, 'backup_id' | 'file_path'>,
): Promise<BackupFile> {
  const { storage } = catalog;
  const key = backupKey(storage, entry);
  const local = storage.localPath(key);
  if (local !== undefined) return local;
  return { location: storage.locationOf(key), size: (await storage.stat(key))?.size, open: () => storage.get(key) };
}

/** The store key of an entry's backup; CATALOG_INVALID when its file_path leads outside the store. */
export function backupKey(storage: Storage, entry: Pick<BackupEntry, 'backup_id' | 'file_path'>): string {
  const key = storage.keyOf(entry.file_path);
  if (key === undefined) {
    throw new FaberError(
      'CATALOG_INVALID',
      `The catalog entry ${entry.backup_id} points outside the backup directory (${entry.file_path}); refusing to use it`,
      {
        result: { backup_id: entry.backup_id, file_path: entry.file_path, backup_directory: storage.description },
        suggestions: ['Fix or remove the entry in backups.json (file_path must be inside backup.directory)'],
      },
    );
  }
  return key;
}

export function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative !== '' && relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative);
}

/** BACKUP_NOT_FOUND for a scope with nothing to work on. */
export function noBackupsError(scope: BackupScope): FaberError {
  const where = scope.environment ? `${scope.project} (${scope.environment})` : scope.project;
  return new FaberError('BACKUP_NOT_FOUND', `No backups of ${where} in the catalog`, {
    result: { project: scope.project, environment: scope.environment ?? null },
    suggestions: [
      `Take a backup: nx run ${scope.project}:backup${scope.environment ? `:${scope.environment}` : ''}`,
      `List what there is: nx run ${scope.project}:list-backups`,
    ],
  });
}
