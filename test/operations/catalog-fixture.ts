import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import type { TestWorkspace } from '../support/workspace.ts';

/** Writes backups.json as it is (no per-entry validation or manifests: fast for big catalogs). */
export async function writeCatalog(workspace: TestWorkspace, entries: BackupEntry[]): Promise<void> {
  await mkdir(workspace.backupRoot, { recursive: true });
  await writeFile(
    path.join(workspace.backupRoot, 'backups.json'),
    JSON.stringify({ schema_version: '1.0', backups: entries }),
  );
}

/** Entries' file_path under the workspace's backup directory (makeEntry's default matches the default directory). */
export function filePathOf(workspace: TestWorkspace, entry: BackupEntry): string {
  return path.join(workspace.root, entry.file_path);
}

/** Creates a small stand-in file for each entry (what list/delete/cleanup touch is the file's existence). */
export async function createFiles(workspace: TestWorkspace, entries: BackupEntry[]): Promise<void> {
  for (const entry of entries) {
    const file = filePathOf(workspace, entry);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `stand-in for ${entry.backup_id}\n`);
  }
}

/** Makes a file look untouched for an hour (orphan repairs leave recent files alone). */
export async function age(file: string, minutes = 60): Promise<void> {
  const then = new Date(Date.now() - minutes * 60_000);
  await utimes(file, then, then);
}
