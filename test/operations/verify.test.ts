import { mkdtemp, open, readdir, readFile, rename, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { verifyBackup, type VerifyResultData } from '../../src/operations/verify.ts';
import type { OperationResult } from '../../src/output/result.ts';
import { adminQuery, adminUrl, freshPostgres, freshSqlite, tracked, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { succeeded } from '../support/results.ts';
import { stringContaining } from '../support/matchers.ts';

const track = tracked();

const ok = succeeded;

async function entryOf(workspace: TestWorkspace, id: string): Promise<BackupEntry> {
  const entry = await workspace.catalog.find(id);
  if (!entry) throw new Error(`${id} is not in the catalog`);
  return entry;
}

async function manifestOf(workspace: TestWorkspace, entry: BackupEntry): Promise<BackupEntry> {
  const file = path.join(path.dirname(path.join(workspace.root, entry.file_path)), `${entry.backup_id}.manifest.json`);
  return (JSON.parse(await readFile(file, 'utf8')) as { backup: BackupEntry }).backup;
}

async function flipByte(file: string, position: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    await handle.write(byte, 0, 1, position);
  } finally {
    await handle.close();
  }
}

/** A seeded SQLite database and one backup of it (dev environment). */
async function sqliteBackup(
  compression: 'zstd' | 'none' = 'zstd',
): Promise<{ workspace: TestWorkspace; backup: BackupResultData; file: string; db: FreshDatabase }> {
  const db = await track(freshSqlite());
  await seedAwkwardData('sqlite', db.url);
  const workspace = await makeWorkspace(
    { database: { provider: 'sqlite', migration_tool: 'prisma' } },
    { DEV_DATABASE_URL: db.url },
  );
  const backup = ok(await createBackup({ environment: 'dev', compression }, workspace.ctx())) as BackupResultData;
  return { workspace, backup, file: path.join(workspace.root, backup.file_path), db };
}

function failedWith(result: OperationResult<VerifyResultData>, code: string): Record<string, unknown> {
  expect(result).toMatchObject({ status: 'error', error_code: code });
  if (result.status !== 'error') throw new Error('expected an error');
  return result.result;
}

describe('verify-backup: file checks', () => {
  it('passes a good backup (the newest by default) and records when', async () => {
    const { workspace, backup } = await sqliteBackup();
    const verifiedAt = new Date('2030-01-01T00:00:00.000Z');
    const result = ok(await verifyBackup({ environment: 'dev' }, workspace.ctx({ now: () => verifiedAt })));
    expect(result).toMatchObject({
      passed_count: 1,
      failed_count: 0,
      backups: [{ backup_id: backup.backup_id, passed: true, status: 'valid' }],
    });
    expect(result.backups[0]?.checks.join('\n')).toMatch(
      /file checksum \(sha256\) matches[\s\S]*decoded content checksum matches[\s\S]*PRAGMA integrity_check: ok/,
    );
    const entry = await entryOf(workspace, backup.backup_id);
    expect(entry.verification.verified_at).toBe(verifiedAt.toISOString());
    expect(await manifestOf(workspace, entry)).toEqual(entry);
  });

  it.each([
    ['zstd', 0.5],
    ['zstd', 0.999],
    ['none', 0.5],
    ['none', 0.0001],
  ] as const)(
    'a flipped byte in a %s file (at %s of its length) fails and marks the entry; a later pass marks it valid again',
    async (compression, at) => {
      const { workspace, backup, file } = await sqliteBackup(compression);
      const position = Math.floor(backup.size_bytes * at);
      await flipByte(file, position);
      const facts = failedWith(
        await verifyBackup({ environment: 'dev', backupId: backup.backup_id }, workspace.ctx()),
        'VERIFICATION_FAILED',
      );
      expect(JSON.stringify(facts)).toMatch(/checksum|decode/);
      const failed = await entryOf(workspace, backup.backup_id);
      expect(failed).toMatchObject({ status: 'verification_failed', verification: { integrity_check: 'failed' } });
      expect(await manifestOf(workspace, failed)).toEqual(failed);

      await flipByte(file, position);
      ok(await verifyBackup({ environment: 'dev', backupId: backup.backup_id }, workspace.ctx()));
      expect(await entryOf(workspace, backup.backup_id)).toMatchObject({
        status: 'valid',
        verification: { integrity_check: 'passed' },
      });
    },
  );

  it('a truncated file fails', async () => {
    const { workspace, backup, file } = await sqliteBackup();
    await truncate(file, Math.floor(backup.size_bytes / 2));
    const facts = failedWith(await verifyBackup({ environment: 'dev' }, workspace.ctx()), 'VERIFICATION_FAILED');
    expect(JSON.stringify(facts)).toContain('size is');
    expect((await entryOf(workspace, backup.backup_id)).status).toBe('verification_failed');
  });

  it('a missing file fails, marks the entry missing and suggests the cleanup that removes it', async () => {
    const { workspace, backup, file } = await sqliteBackup();
    await rename(file, `${file}.moved-away`);
    const result = await verifyBackup({ environment: 'dev' }, workspace.ctx());
    failedWith(result, 'VERIFICATION_FAILED');
    expect(result.status === 'error' && result.recovery.suggestions.join('\n')).toContain(
      'nx run api:cleanup-backups:dev --yes',
    );
    expect(await entryOf(workspace, backup.backup_id)).toMatchObject({
      status: 'missing',
      verification: { file_exists: false },
    });
  });

  it('--all checks every backup of the environment and names the failed ones', async () => {
    const { workspace, backup, file } = await sqliteBackup();
    const second = ok(await createBackup({ environment: 'dev', label: 'second' }, workspace.ctx())) as BackupResultData;
    await flipByte(file, 100);
    const facts = failedWith(
      await verifyBackup({ environment: 'dev', all: true }, workspace.ctx()),
      'VERIFICATION_FAILED',
    ) as unknown as VerifyResultData;
    expect(facts.backups.map((item) => [item.backup_id, item.passed])).toEqual([
      [backup.backup_id, false],
      [second.backup_id, true],
    ]);
  });

  it('reports BACKUP_NOT_FOUND when there is nothing to verify, and INVALID_OPTION for --all with --backupId', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } });
    expect(await verifyBackup({ environment: 'dev' }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'BACKUP_NOT_FOUND',
    });
    expect(
      await verifyBackup({ environment: 'dev', all: true, backupId: 'backup-20250101-000000' }, workspace.ctx()),
    ).toMatchObject({ status: 'error', error_code: 'INVALID_OPTION' });
  });
});

describe('verify-backup: the format check tool', () => {
  it.each(['custom', 'directory'] as const)(
    'without pg_restore on PATH, a %s backup → TOOL_NOT_FOUND, and the entry stays valid',
    async (format) => {
      const db = await track(freshPostgres());
      await seedAwkwardData('postgresql', db.url);
      const workspace = await makeWorkspace(
        { database: { provider: 'postgresql', migration_tool: 'prisma' }, backup: { format } },
        { DEV_DATABASE_URL: db.url },
      );
      const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      const noTools = await mkdtemp(path.join(os.tmpdir(), 'faber-no-tools-'));
      try {
        const result = await verifyBackup(
          { environment: 'dev' },
          workspace.ctx({ env: { PATH: noTools, DEV_DATABASE_URL: db.url } }),
        );
        expect(failedWith(result, 'TOOL_NOT_FOUND')).toMatchObject({ tool: 'pg_restore' });
        if (result.status !== 'error') throw new Error('expected an error');
        expect(result.recovery.suggestions.join('\n')).toContain('apt-get install postgresql-client');
        expect(await entryOf(workspace, backup.backup_id)).toMatchObject({
          status: 'valid',
          verification: { integrity_check: 'passed' },
        });
      } finally {
        await rm(noTools, { recursive: true, force: true });
      }
    },
  );
});

describe('verify-backup --deep: restore drill', () => {
  it('passes a good SQLite backup, records restore_test in catalog and manifest, and leaves no scratch file', async () => {
    const { workspace, backup, db } = await sqliteBackup();
    const result = ok(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()));
    expect(result.backups[0]?.restore_test).toMatchObject({
      status: 'passed',
      details: stringContaining('row counts and migrations match'),
    });
    const entry = await entryOf(workspace, backup.backup_id);
    expect(entry).toMatchObject({ status: 'valid', verification: { restore_test: { status: 'passed' } } });
    expect(await manifestOf(workspace, entry)).toEqual(entry);
    const liveDirectory = path.dirname(db.name);
    expect((await readdir(liveDirectory)).filter((name) => name.includes('__faber_'))).toEqual([]);
  });

  it('fails when the record claims a row count the backup does not have, and marks the entry', async () => {
    const { workspace, backup } = await sqliteBackup();
    await workspace.catalog.patch(backup.backup_id, (entry) => {
      entry.table_row_counts = { ...entry.table_row_counts, blobs: 6 };
    });
    const facts = failedWith(
      await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()),
      'VERIFICATION_FAILED',
    ) as unknown as VerifyResultData;
    expect(facts.backups[0]?.restore_test).toMatchObject({
      status: 'failed',
      details: 'table blobs has 5 rows, 6 were recorded',
    });
    expect(await entryOf(workspace, backup.backup_id)).toMatchObject({
      status: 'verification_failed',
      verification: { integrity_check: 'passed', restore_test: { status: 'failed' } },
    });
  });

  it('passes a good PostgreSQL backup on the server named by verify.connection_string_env and drops the scratch database', async () => {
    const db = await track(freshPostgres());
    await seedAwkwardData('postgresql', db.url);
    const workspace = await makeWorkspace(
      {
        database: { provider: 'postgresql', migration_tool: 'prisma' },
        backup: { format: 'custom' },
        verify: { connection_string_env: 'DRILL_DATABASE_URL' },
      },
      { DEV_DATABASE_URL: db.url },
    );
    const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
    // Only the drill server's variable is set: the environment's own database is not needed.
    const drillEnv = { PATH: process.env.PATH, DRILL_DATABASE_URL: adminUrl('postgresql') };
    const result = ok(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx({ env: drillEnv })));
    expect(result.backups[0]?.restore_test).toMatchObject({ status: 'passed' });
    expect((await entryOf(workspace, backup.backup_id)).verification.restore_test?.status).toBe('passed');
    const leftovers = await adminQuery('postgresql', [
      `SELECT datname FROM pg_database WHERE datname LIKE 'postgres\\_\\_faber\\_verify\\_%'`,
    ]);
    expect(leftovers).toEqual([]);
  });
});
