import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { listBackups } from '../../src/operations/list.ts';
import { pinBackup } from '../../src/operations/pin.ts';
import { freshSqlite, tracked } from '../support/databases.ts';
import { succeeded } from '../support/results.ts';
import { makeWorkspace } from '../support/workspace.ts';

const track = tracked();
const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

describe('pins', () => {
  it('--pin on backup, pin-backup and --unpin: cleanup keeps exactly the pinned backups, list-backups marks them', async () => {
    const db = await track(freshSqlite());
    const sqlite = new DatabaseSync(db.name);
    sqlite.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);');
    sqlite.close();
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: db.url });
    const backupAt = async (iso: string | undefined, pin?: boolean) =>
      succeeded(
        await createBackup({ environment: 'dev', pin }, workspace.ctx(iso ? { now: () => new Date(iso) } : {})),
      ) as BackupResultData;
    const old = await backupAt('2025-01-01T00:00:00Z');
    const pinnedAtBirth = await backupAt('2025-01-02T00:00:00Z', true);
    const plain = await backupAt('2025-01-03T00:00:00Z');
    const newest = await backupAt(undefined);
    expect(pinnedAtBirth.pinned).toBe(true);

    expect(succeeded(await pinBackup({ environment: 'dev', backupId: old.backup_id }, workspace.ctx()))).toEqual({
      backup_id: old.backup_id,
      environment: 'dev',
      pinned: true,
      changed: true,
    });
    expect(succeeded(await pinBackup({ environment: 'dev', backupId: old.backup_id }, workspace.ctx()))).toMatchObject({
      pinned: true,
      changed: false,
    });
    expect(
      succeeded(
        await pinBackup({ environment: 'dev', backupId: pinnedAtBirth.backup_id, unpin: true }, workspace.ctx()),
      ),
    ).toMatchObject({ pinned: false, changed: true });
    const manifest = JSON.parse(
      await readFile(path.join(workspace.root, old.file_path.replace(/\.sqlite\.zst$/, '.manifest.json')), 'utf8'),
    ) as { backup: BackupEntry };
    expect(manifest.backup.pinned).toBe(true);

    workspace.output.length = 0;
    succeeded(await listBackups({ environment: 'dev' }, workspace.ctx()));
    const rowOf = (id: string) => workspace.output.find((line) => line.startsWith('info') && line.includes(id)) ?? '';
    expect(rowOf(old.backup_id)).toMatch(/pinned/);
    expect(rowOf(plain.backup_id)).not.toMatch(/pinned/);

    succeeded(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx()));
    const left = (await workspace.catalog.read()).entries.map((entry) => entry.backup_id);
    expect(left.sort()).toEqual([old.backup_id, newest.backup_id].sort());
    expect(await exists(path.join(workspace.root, old.file_path))).toBe(true);
    expect(await exists(path.join(workspace.root, pinnedAtBirth.file_path))).toBe(false);
  });

  it('an unknown id is BACKUP_NOT_FOUND and a missing one INVALID_OPTION', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } });
    expect(await pinBackup({ environment: 'dev', backupId: 'backup-20250101-000000' }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'BACKUP_NOT_FOUND',
    });
    expect(
      await pinBackup({ environment: 'dev' } as { environment: string; backupId: string }, workspace.ctx()),
    ).toMatchObject({ status: 'error', error_code: 'INVALID_OPTION' });
  });
});
