import { createHash } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import type { OperationResult } from '../../src/output/result.ts';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { freshMysql, freshPostgres, freshSqlite, tracked } from '../support/databases.ts';
import { seedAwkwardData, tableChecksums } from '../support/fixtures.ts';
import { makeWorkspace } from '../support/workspace.ts';
import { succeeded } from '../support/results.ts';
import { stringContaining } from '../support/matchers.ts';

const track = tracked();

function ok(result: OperationResult<unknown>): BackupResultData {
  return succeeded(result) as BackupResultData;
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Feeds a backup file to a native client through the native decompressor: no code of ours involved. */
async function restoreNatively(
  file: string,
  compression: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const decoder =
    compression === 'zstd'
      ? ['zstd', ['-dc', file]]
      : compression === 'gzip'
        ? ['gzip', ['-dc', file]]
        : ['cat', [file]];
  await new Promise<void>((resolve, reject) => {
    const source = spawn(decoder[0] as string, decoder[1] as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sink = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'], env });
    let stderr = '';
    sink.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    source.stdout.pipe(sink.stdin);
    sink.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr}`))));
  });
}

async function expectRecorded(
  workspace: Awaited<ReturnType<typeof makeWorkspace>>,
  result: BackupResultData,
): Promise<BackupEntry> {
  const { entries } = await workspace.catalog.read();
  const entry = entries.find((candidate) => candidate.backup_id === result.backup_id);
  expect(entry).toBeDefined();
  const file = path.join(workspace.root, result.file_path);
  if (entry?.format !== 'directory') {
    expect(await sha256(file)).toBe(entry?.checksum.value);
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe('600');
  }
  const manifest = JSON.parse(
    await readFile(path.join(path.dirname(file), `${result.backup_id}.manifest.json`), 'utf8'),
  ) as { backup: BackupEntry };
  expect(manifest.backup).toEqual(entry);
  expect((await readdir(path.dirname(file))).filter((name) => name.endsWith('.partial'))).toEqual([]);
  return entry as BackupEntry;
}

describe('backup of PostgreSQL', () => {
  it.each(['sql', 'custom', 'directory'] as const)(
    '%s format round-trips through the native tools with identical content',
    async (format) => {
      const source = await track(freshPostgres());
      await seedAwkwardData('postgresql', source.url);
      const workspace = await makeWorkspace(
        { database: { provider: 'postgresql', migration_tool: 'prisma' }, backup: { format } },
        { PROD_DATABASE_URL: source.url },
      );
      const result = ok(
        await createBackup({ environment: 'production', label: 'Pre V2 Migration!', yes: true }, workspace.ctx()),
      );
      expect(result.backup_id).toMatch(/^backup-\d{8}-\d{6}-pre-v2-migration$/);
      const entry = await expectRecorded(workspace, result);
      expect(entry).toMatchObject({
        project: 'api',
        environment: 'production',
        format,
        status: 'valid',
        pinned: false,
        retention_days: 90,
        label: 'pre-v2-migration',
      });
      expect(entry.migrations).toMatchObject({ tool: 'prisma', applied_count: 2 });
      expect(entry.migrations.migrations_list).toHaveLength(2);
      expect(entry.tool_versions.client).toMatch(/pg_dump/);
      expect(Object.keys(entry.table_row_counts ?? {}).length).toBeGreaterThan(2);

      const target = await track(freshPostgres());
      const file = path.join(workspace.root, result.file_path);
      const env = { ...process.env, PGDATABASE: undefined };
      if (format === 'sql')
        await restoreNatively(file, entry.compression, 'psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', target.url], env);
      else if (format === 'custom')
        await restoreNatively(
          file,
          entry.compression,
          'pg_restore',
          ['--exit-on-error', '--no-owner', '-d', target.url],
          env,
        );
      else execFileSync('pg_restore', ['--exit-on-error', '--no-owner', '-j', '2', '-d', target.url, file]);
      expect(await tableChecksums('postgresql', target.url)).toEqual(await tableChecksums('postgresql', source.url));
    },
  );
});

describe('backup of MariaDB', () => {
  it('round-trips through the mariadb client with identical content', async () => {
    const source = await track(freshMysql());
    await seedAwkwardData('mysql', source.url);
    const workspace = await makeWorkspace({ database: { provider: 'mysql' } }, { DEV_DATABASE_URL: source.url });
    const result = ok(await createBackup({ environment: 'dev', compression: 'gzip' }, workspace.ctx()));
    const entry = await expectRecorded(workspace, result);
    expect(entry).toMatchObject({ compression: 'gzip', format: 'sql', retention_days: 30 });
    expect(result.file_path).toMatch(/\.sql\.gz$/);
    expect(entry.migrations.applied_count).toBe(2);
    const target = await track(freshMysql());
    const url = new URL(target.url);
    await restoreNatively(path.join(workspace.root, result.file_path), 'gzip', 'mariadb', [
      '-h',
      url.hostname,
      '-P',
      url.port || '3306',
      '-u',
      decodeURIComponent(url.username),
      url.pathname.slice(1),
    ]);
    expect(await tableChecksums('mysql', target.url)).toEqual(await tableChecksums('mysql', source.url));
  });
});

describe('backup of SQLite', () => {
  it('is a consistent database file that opens with identical content', async () => {
    const source = await track(freshSqlite());
    await seedAwkwardData('sqlite', source.url);
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: source.url });
    const result = ok(await createBackup({ environment: 'dev' }, workspace.ctx()));
    const entry = await expectRecorded(workspace, result);
    expect(entry).toMatchObject({ format: 'sqlite', compression: 'zstd', backup_method: stringContaining('sqlite') });
    const restored = path.join(workspace.root, 'restored.db');
    await writeFile(restored, execFileSync('zstd', ['-dc', path.join(workspace.root, result.file_path)]));
    expect(await tableChecksums('sqlite', `sqlite:${restored}`)).toEqual(await tableChecksums('sqlite', source.url));
  });

  it('gives distinct ids to backups in the same second and slugs labels', async () => {
    const source = await track(freshSqlite());
    await seedAwkwardData('sqlite', source.url);
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: source.url });
    const now = () => new Date('2025-01-24T14:00:00Z');
    const first = ok(await createBackup({ environment: 'dev', label: 'Nightly' }, workspace.ctx({ now })));
    const second = ok(await createBackup({ environment: 'dev', label: 'nightly' }, workspace.ctx({ now })));
    expect(first.backup_id).toBe('backup-20250124-140000-nightly');
    expect(second.backup_id).toBe('backup-20250124-140000-nightly-2');
    expect((await workspace.catalog.read()).entries).toHaveLength(2);
  });

  it('skips with skipIfNotRequired when backup_before_migrate is false, and records nothing', async () => {
    const workspace = await makeWorkspace(
      { database: { provider: 'sqlite' } },
      { DEV_DATABASE_URL: 'sqlite:nothing.db' },
    );
    const result = await createBackup({ environment: 'dev', skipIfNotRequired: true }, workspace.ctx());
    expect(result).toMatchObject({ status: 'success', result: { skipped: true } });
    expect((await workspace.catalog.read()).entries).toEqual([]);
  });
});
