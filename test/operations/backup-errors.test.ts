import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBackup, type BackupOptions } from '../../src/operations/backup.ts';
import { CONFIG_RELATIVE_PATH } from '../../src/config/load.ts';
import type { OperationContext } from '../../src/operations/context.ts';
import { adminQuery, createPasswordUser, freshPostgres, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { capturingReporter, makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { anyInstance } from '../support/matchers.ts';

const created: FreshDatabase[] = [];
afterAll(async () => {
  for (const db of created) await db.drop();
});

let source: FreshDatabase | undefined;
async function postgresUrl(): Promise<string> {
  if (!source) {
    source = await freshPostgres();
    created.push(source);
    await seedAwkwardData('postgresql', source.url);
  }
  return source.url;
}

/** Our own child processes with this command name (from /proc/<pid>/stat: "pid (comm) state ppid ..."). */
async function childProcessesNamed(name: string): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const match = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
    if (match?.[1] === name && Number(match[2]) === process.pid) found.push(Number(pid));
  }
  return found;
}

async function filesUnder(dir: string): Promise<string[]> {
  const all = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return all.filter((name) => /\.(sql|dump|sqlite|zst|gz|partial|json)$/.test(name));
}

async function expectFailure(
  workspace: TestWorkspace,
  options: BackupOptions,
  code: string,
  ctx: Partial<OperationContext> = {},
  secret?: string,
) {
  const result = await createBackup(options, workspace.ctx(ctx));
  expect(result.status).toBe('error');
  if (result.status !== 'error') return;
  expect(result.error_code).toBe(code);
  expect(result.error.length).toBeGreaterThan(10);
  expect(result.recovery.suggestions.length).toBeGreaterThan(0);
  expect(result.stack).toBeUndefined();
  expect(await filesUnder(workspace.backupRoot)).toEqual([]);
  expect(workspace.output.some((line) => line.startsWith('fail'))).toBe(true);
  if (secret) {
    expect(JSON.stringify(result)).not.toContain(secret);
    expect(workspace.output.join('\n')).not.toContain(secret);
  }
  return result;
}

describe('backup errors: each has its code, leaves no file and records nothing', () => {
  it('bad config → CONFIG_INVALID', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } });
    await writeFile(
      path.join(workspace.root, CONFIG_RELATIVE_PATH),
      '{"schema_version": "1.0", "database": {"provider": "oracle"}}',
    );
    await expectFailure(workspace, { environment: 'dev' }, 'CONFIG_INVALID');
  });

  it('unknown environment → ENVIRONMENT_UNKNOWN', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } });
    const result = await expectFailure(workspace, { environment: 'prod' }, 'ENVIRONMENT_UNKNOWN');
    expect(result?.error).toContain('dev, production');
  });

  it('unset variable → CONNECTION_ENV_UNSET naming it', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } });
    const result = await expectFailure(workspace, { environment: 'dev' }, 'CONNECTION_ENV_UNSET');
    expect(result?.error).toContain('DEV_DATABASE_URL');
  });

  it('wrong password (MariaDB checks passwords) → AUTHENTICATION_FAILED, password nowhere', async () => {
    const user = await createPasswordUser('mysql');
    created.push(user);
    const wrong = new URL(user.url);
    wrong.password = encodeURIComponent('Wr0ng@pass:/%');
    const workspace = await makeWorkspace({ database: { provider: 'mysql' } }, { DEV_DATABASE_URL: wrong.toString() });
    await expectFailure(workspace, { environment: 'dev' }, 'AUTHENTICATION_FAILED', {}, 'Wr0ng@pass:/%');
  });

  it('unknown PostgreSQL role (the local server trusts passwords) → AUTHENTICATION_FAILED', async () => {
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' } },
      { DEV_DATABASE_URL: 'postgres://no_such_role_faber:s3cr3t-pw@127.0.0.1:5432/postgres' },
    );
    await expectFailure(workspace, { environment: 'dev' }, 'AUTHENTICATION_FAILED', {}, 's3cr3t-pw');
  });

  it('unreachable host → CONNECTION_FAILED', async () => {
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' } },
      { DEV_DATABASE_URL: 'postgres://postgres:hunter22@127.0.0.1:1/nope' },
    );
    await expectFailure(workspace, { environment: 'dev' }, 'CONNECTION_FAILED', {}, 'hunter22');
  });

  it('client tool missing from PATH → TOOL_NOT_FOUND', async () => {
    const url = await postgresUrl();
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: url });
    const emptyBin = path.join(workspace.root, 'empty-bin');
    await mkdir(emptyBin);
    await expectFailure(workspace, { environment: 'dev' }, 'TOOL_NOT_FOUND', {
      env: { PATH: emptyBin, DEV_DATABASE_URL: url },
    });
  });

  it('backup directory not writable → DIRECTORY_NOT_WRITABLE', async () => {
    const url = await postgresUrl();
    // Root may write anywhere, so block the directory with a file instead of permissions.
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' }, backup: { directory: 'blocked/backups' } },
      { DEV_DATABASE_URL: url },
    );
    await writeFile(path.join(workspace.root, 'blocked'), 'not a directory');
    await expectFailure(workspace, { environment: 'dev' }, 'DIRECTORY_NOT_WRITABLE');
  });

  it('not enough space → INSUFFICIENT_DISK_SPACE with the figures', async () => {
    const url = await postgresUrl();
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: url });
    const result = await expectFailure(workspace, { environment: 'dev' }, 'INSUFFICIENT_DISK_SPACE', {
      freeSpace: () => Promise.resolve(1024),
    });
    expect(result?.result).toMatchObject({ available_space_gb: 0, required_space_gb: anyInstance(Number) });
  });

  it('large backup of a require_approval environment without a terminal → CONFIRMATION_REQUIRED; --yes proceeds', async () => {
    const url = await postgresUrl();
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' }, backup: { confirm_above_bytes: 1 } },
      { PROD_DATABASE_URL: url },
    );
    await expectFailure(workspace, { environment: 'production' }, 'CONFIRMATION_REQUIRED');
    const result = await createBackup({ environment: 'production', yes: true }, workspace.ctx());
    expect(result.status).toBe('success');
  });

  it('invalid options → INVALID_OPTION', async () => {
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' } },
      { DEV_DATABASE_URL: 'postgres://x@127.0.0.1/x' },
    );
    await expectFailure(workspace, { environment: 'dev', retentionDays: -5 }, 'INVALID_OPTION');
    await expectFailure(workspace, { environment: 'dev', label: '///' }, 'INVALID_OPTION');
  });

  it('cancelled before it starts → CANCELLED', async () => {
    const url = await postgresUrl();
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: url });
    const controller = new AbortController();
    controller.abort();
    await expectFailure(workspace, { environment: 'dev' }, 'CANCELLED', { signal: controller.signal });
  });

  it('cancelled mid-dump → CANCELLED, partial file removed, dump tool gone', async () => {
    const url = await postgresUrl();
    await adminQuery(
      'postgresql',
      ['CREATE TABLE IF NOT EXISTS bulk AS SELECT g AS id, md5(g::text) AS hash FROM generate_series(1, 200000) g'],
      new URL(url).pathname.slice(1),
    );
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: url });
    const controller = new AbortController();
    const reporter = capturingReporter(workspace.output);
    let sawPartial = false;
    reporter.progress = () => {
      if (controller.signal.aborted) return;
      sawPartial = true;
      controller.abort();
    };
    await expectFailure(workspace, { environment: 'dev' }, 'CANCELLED', { signal: controller.signal, reporter });
    expect(sawPartial).toBe(true);
    expect(await childProcessesNamed('pg_dump')).toEqual([]);
  });
});
