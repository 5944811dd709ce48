import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/operations/backup.ts';
import { adminUrl, freshPostgres, type FreshDatabase } from '../support/databases.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { seedBulk, sessionsOn, tableFingerprint } from './seed.ts';
import {
  expectSoundCatalog,
  filesUnder,
  runOperationChild,
  type ChildOutcome,
  type OperationChild,
} from './support.ts';

/**
 * Ctrl-C (SIGINT) and SIGTERM (CI cancelling a job, `docker stop`) during a backup and during a
 * restore, sent to a real child process: the operation stops its tools, removes its partial
 * files, leaves the database as it was, records nothing, and ends non-zero with CANCELLED.
 */

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

let source: FreshDatabase;
let workspace: TestWorkspace;
let backupId: string;
/** Content at backup time; the live database was changed afterwards, so a restore would show. */
let backedUp: string;

beforeAll(async () => {
  source = await freshPostgres();
  await seedBulk(source.url, 35);
  workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: source.url });
  const result = await createBackup({ environment: 'dev', label: 'before-signals' }, workspace.ctx());
  if (result.status !== 'success' || !('backup_id' in result.result))
    throw new Error(`setup backup failed: ${JSON.stringify(result)}`);
  backupId = result.result.backup_id;
  backedUp = await tableFingerprint(source.url);
  const client = new pg.Client({ connectionString: source.url });
  await client.connect();
  await client.query(`UPDATE bulk SET payload = 'changed after the backup' WHERE id <= 100`);
  await client.end();
  expect(await tableFingerprint(source.url)).not.toBe(backedUp);
});

afterAll(async () => {
  await source?.drop();
  if (workspace) await rm(workspace.root, { recursive: true, force: true });
});

function child(operation: 'backup' | 'restore', options: Record<string, unknown>): OperationChild {
  return runOperationChild(
    {
      operation,
      workspaceRoot: workspace.root,
      projectName: 'api',
      options: { environment: 'dev', ...options },
      announceProgress: true,
    },
    { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: source.url },
  );
}

function expectCancelled(outcome: ChildOutcome): void {
  expect(outcome.code, outcome.stderr).toBe(1);
  expect(outcome.result).toMatchObject({ status: 'error', error_code: 'CANCELLED' });
  expect(outcome.stdout).toContain('❌ FAILED');
}

/** Everything but the setup backup: .partial files, scratch copies, new entries. */
async function expectNothingNew(): Promise<void> {
  const files = await filesUnder(workspace.backupRoot);
  expect(
    files.filter((name) => /\.partial$|\.tmp-|pgpass/.test(name)),
    'partial files',
  ).toEqual([]);
  const entries = await expectSoundCatalog(workspace.root, workspace.backupRoot);
  expect(entries.map((entry) => entry.backup_id)).toEqual([backupId]);
  expect(files.filter((name) => /\.sql\.zst$/.test(name))).toEqual([`api/dev/${backupId}.sql.zst`]);
}

async function scratchDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl('postgresql') });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_faber\\_%'`,
    );
    return rows.map((row) => row.datname).filter((name) => name.startsWith(source.name));
  } finally {
    await client.end();
  }
}

/** A COPY into the restore's scratch database is running right now. */
async function restoreIsLoading(): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl('postgresql') });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT 1 FROM pg_stat_activity WHERE datname LIKE '%\\_\\_faber\\_restore\\_%' AND query LIKE 'COPY %'`,
    );
    return rows.length > 0;
  } finally {
    await client.end();
  }
}

async function waitForNoSessions(): Promise<number> {
  let sessions = await sessionsOn(adminUrl('postgresql'), source.name);
  for (let waited = 0; sessions > 0 && waited < 10_000; waited += 100) {
    await sleep(100);
    sessions = await sessionsOn(adminUrl('postgresql'), source.name);
  }
  return sessions;
}

describe.each(SIGNALS)('%s', (signal) => {
  it('during a backup, mid-dump: CANCELLED, pg_dump stopped, partial file removed, nothing recorded', async () => {
    const running = child('backup', { label: 'interrupted' });
    await running.progressed(4 * 1024 * 1024);
    running.kill(signal);
    expectCancelled(await running.done);
    await expectNothingNew();
    expect(await waitForNoSessions()).toBe(0);
  });

  it('during a restore, while loading the scratch copy: CANCELLED, target unchanged, scratch dropped, nothing recorded', async () => {
    const before = await tableFingerprint(source.url);
    // Without a safety backup, the restore goes straight to loading: the signal lands mid-load.
    const running = child('restore', { from: backupId, skipSafetyBackup: true });
    // 4 MB of the ~35 MB dump fed to psql: the load is under way and far from done.
    await running.progressed(4 * 1024 * 1024);
    expect(await restoreIsLoading()).toBe(true);
    running.kill(signal);
    expectCancelled(await running.done);
    expect(await tableFingerprint(source.url)).toBe(before);
    expect(await scratchDatabases()).toEqual([]);
    await expectNothingNew();
  });

  it('during the safety backup a restore takes first: CANCELLED, target unchanged, no partial file', async () => {
    const before = await tableFingerprint(source.url);
    const running = child('restore', { from: backupId });
    await running.printed('Taking a safety backup');
    await running.progressed(4 * 1024 * 1024);
    running.kill(signal);
    expectCancelled(await running.done);
    expect(await tableFingerprint(source.url)).toBe(before);
    expect(await scratchDatabases()).toEqual([]);
    await expectNothingNew();
  });
});

describe('after the interruptions', () => {
  it('the same restore, uninterrupted, still works (nothing was left half-done)', async () => {
    const outcome = await child('restore', { from: backupId, skipSafetyBackup: true }).done;
    expect(outcome.result, outcome.stdout).toMatchObject({ status: 'success' });
    expect(await tableFingerprint(source.url)).toBe(backedUp);
  });
});
