import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { deleteBackup } from '../../src/operations/delete.ts';
import { makeEntry } from '../support/entries.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { createFiles, filePathOf, writeCatalog } from './catalog-fixture.ts';

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );
const manifestOf = (workspace: TestWorkspace, entry: BackupEntry) =>
  path.join(path.dirname(filePathOf(workspace, entry)), `${entry.backup_id}.manifest.json`);

/** A workspace whose catalog holds these entries, each with a file and a manifest. */
async function workspaceWith(...entries: BackupEntry[]): Promise<TestWorkspace> {
  const workspace = await makeWorkspace({ database: { provider: 'sqlite' } });
  await createFiles(workspace, entries);
  for (const entry of entries) await workspace.catalog.add(entry);
  return workspace;
}

async function catalogIds(workspace: TestWorkspace): Promise<string[]> {
  return (await workspace.catalog.read()).entries.map((entry) => entry.backup_id);
}

describe('delete-backup', () => {
  it('removes the catalog entry, the manifest and the file', async () => {
    const target = makeEntry({ project: 'api', environment: 'dev' });
    const other = makeEntry({ project: 'api', environment: 'dev' });
    const workspace = await workspaceWith(target, other);
    expect(await exists(manifestOf(workspace, target))).toBe(true);

    const result = await deleteBackup({ environment: 'dev', backupId: target.backup_id }, workspace.ctx());
    expect(result).toMatchObject({
      status: 'success',
      result: { backup_id: target.backup_id, size_bytes: 1024, pinned: false },
    });
    expect(await catalogIds(workspace)).toEqual([other.backup_id]);
    expect(await exists(manifestOf(workspace, target))).toBe(false);
    expect(await exists(filePathOf(workspace, target))).toBe(false);
    expect(await exists(filePathOf(workspace, other))).toBe(true);
  });

  it('deletes a directory-format backup with everything in it', async () => {
    const entry = makeEntry({ project: 'api', environment: 'dev', format: 'directory' });
    entry.file_path = entry.file_path.replace(/\.sql\.zst$/, '');
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } });
    await mkdir(filePathOf(workspace, entry), { recursive: true });
    await writeFile(path.join(filePathOf(workspace, entry), 'toc.dat'), 'toc');
    await workspace.catalog.add(entry);
    expect(await deleteBackup({ environment: 'dev', backupId: entry.backup_id }, workspace.ctx())).toMatchObject({
      status: 'success',
    });
    expect(await exists(filePathOf(workspace, entry))).toBe(false);
  });

  it('refuses a pinned backup without --force (BACKUP_PROTECTED) and deletes it with it', async () => {
    const pinned = makeEntry({ project: 'api', environment: 'dev', pinned: true });
    const workspace = await workspaceWith(pinned);
    const refused = await deleteBackup({ environment: 'dev', backupId: pinned.backup_id }, workspace.ctx());
    expect(refused).toMatchObject({ status: 'error', error_code: 'BACKUP_PROTECTED' });
    expect(refused.status === 'error' && refused.recovery.suggestions[0]).toContain(
      `nx run api:delete-backup:dev --backupId=${pinned.backup_id} --force`,
    );
    expect(await catalogIds(workspace)).toEqual([pinned.backup_id]);
    expect(await exists(filePathOf(workspace, pinned))).toBe(true);

    expect(
      await deleteBackup({ environment: 'dev', backupId: pinned.backup_id, force: true }, workspace.ctx()),
    ).toMatchObject({ status: 'success' });
    expect(await catalogIds(workspace)).toEqual([]);
  });

  it('reports BACKUP_NOT_FOUND for an unknown id, and says where an id of another environment lives', async () => {
    const production = makeEntry({ project: 'api', environment: 'production' });
    const workspace = await workspaceWith(production);
    expect(
      await deleteBackup({ environment: 'dev', backupId: 'backup-20200101-000000' }, workspace.ctx()),
    ).toMatchObject({ status: 'error', error_code: 'BACKUP_NOT_FOUND' });
    const elsewhere = await deleteBackup({ environment: 'dev', backupId: production.backup_id }, workspace.ctx());
    expect(elsewhere).toMatchObject({
      status: 'error',
      error_code: 'BACKUP_NOT_FOUND',
      result: { found_in: { environment: 'production' } },
    });
    expect(await catalogIds(workspace)).toEqual([production.backup_id]);
  });

  it('rejects ids that are not backup ids before looking anything up', async () => {
    const workspace = await workspaceWith();
    for (const backupId of ['../../etc/passwd', 'backup-20250101-000000/../x', '']) {
      expect(await deleteBackup({ environment: 'dev', backupId }, workspace.ctx())).toMatchObject({
        status: 'error',
        error_code: 'INVALID_OPTION',
      });
    }
  });

  it('needs confirmation in a protected environment: CONFIRMATION_REQUIRED without a terminal, a question on one', async () => {
    const entry = makeEntry({ project: 'api', environment: 'production' });
    const workspace = await workspaceWith(entry);
    const refused = await deleteBackup({ environment: 'production', backupId: entry.backup_id }, workspace.ctx());
    expect(refused).toMatchObject({ status: 'error', error_code: 'CONFIRMATION_REQUIRED' });
    expect(refused.status === 'error' && refused.recovery.suggestions.join(' ')).toContain('--yes');

    const questions: string[] = [];
    const declined = await deleteBackup(
      { environment: 'production', backupId: entry.backup_id },
      workspace.ctx({ interactive: true, confirm: (question) => (questions.push(question), Promise.resolve(false)) }),
    );
    expect(declined).toMatchObject({ status: 'error', error_code: 'CANCELLED' });
    expect(questions[0]).toContain(entry.backup_id);
    expect(await catalogIds(workspace)).toEqual([entry.backup_id]);
    expect(await exists(filePathOf(workspace, entry))).toBe(true);

    expect(
      await deleteBackup({ environment: 'production', backupId: entry.backup_id, yes: true }, workspace.ctx()),
    ).toMatchObject({ status: 'success' });
    expect(await catalogIds(workspace)).toEqual([]);
  });

  it('refuses a catalog entry whose path leads outside the backup directory, and touches nothing', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } });
    const victim = path.join(workspace.root, 'precious.txt');
    await writeFile(victim, 'keep me');
    const entry = makeEntry({ project: 'api', environment: 'dev', file_path: 'precious.txt' });
    await writeCatalog(workspace, [entry]);
    expect(await deleteBackup({ environment: 'dev', backupId: entry.backup_id }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'CATALOG_INVALID',
    });
    expect(await readFile(victim, 'utf8')).toBe('keep me');
    expect(await catalogIds(workspace)).toEqual([entry.backup_id]);
  });
});
