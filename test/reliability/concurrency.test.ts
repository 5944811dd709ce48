import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG_FILE_NAME } from '../../src/catalog/catalog.ts';
import { CONFIG_RELATIVE_PATH } from '../../src/config/load.ts';
import type { FaberConfigInput } from '../../src/config/schema.ts';
import { createBackup } from '../../src/operations/backup.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { freshMysql, freshPostgres, freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { makeWorkspace } from '../support/workspace.ts';
import { seedBulk } from './seed.ts';
import { deadPid, expectSoundCatalog, filesUnder, holdCatalogLock, runOperationChild } from './support.ts';

const execFileAsync = promisify(execFile);
const DAY_MS = 86_400_000;
const ENVIRONMENTS = { dev: { connection_string_env: 'DEV_URL' }, staging: { connection_string_env: 'STAGING_URL' } };

const created: FreshDatabase[] = [];
const roots: string[] = [];
async function track<T extends FreshDatabase>(db: Promise<T>): Promise<T> {
  const fresh = await db;
  created.push(fresh);
  return fresh;
}

afterAll(async () => {
  for (const db of created) await db.drop();
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

async function writeConfig(root: string, relativeDir: string, config: FaberConfigInput): Promise<void> {
  const file = path.join(root, relativeDir, CONFIG_RELATIVE_PATH);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(config, null, 2));
}

describe('8 backups at once into one catalog', () => {
  let postgres: FreshDatabase;
  let mariadb: FreshDatabase;
  let sqlite: FreshDatabase;

  beforeAll(async () => {
    [postgres, mariadb, sqlite] = await Promise.all([
      track(freshPostgres()),
      track(freshMysql()),
      track(freshSqlite()),
    ]);
    await Promise.all([
      seedAwkwardData('postgresql', postgres.url),
      seedAwkwardData('mysql', mariadb.url),
      seedAwkwardData('sqlite', sqlite.url),
    ]);
  });

  it('4 projects × 2 environments on PostgreSQL, MariaDB and SQLite, 8 processes: 8 entries, valid JSON, every backup sound', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'faber-concurrent-'));
    roots.push(root);
    // api and web use the workspace config (PostgreSQL); shop (MariaDB) and notes (SQLite) have
    // their own configs, all writing to the same backup directory and so the same catalog.
    await writeConfig(root, '', {
      schema_version: '1.0',
      database: { provider: 'postgresql' },
      environments: ENVIRONMENTS,
    });
    await writeConfig(root, 'projects/shop', {
      schema_version: '1.0',
      database: { provider: 'mysql' },
      environments: ENVIRONMENTS,
    });
    await writeConfig(root, 'projects/notes', {
      schema_version: '1.0',
      database: { provider: 'sqlite' },
      environments: ENVIRONMENTS,
    });
    const urls: Record<string, string> = { api: postgres.url, web: postgres.url, shop: mariadb.url, notes: sqlite.url };
    const runs = Object.entries(urls).flatMap(([project, url]) =>
      (['dev', 'staging'] as const).map(
        (environment) =>
          runOperationChild(
            {
              operation: 'backup',
              workspaceRoot: root,
              projectName: project,
              ...(project === 'shop' || project === 'notes' ? { projectRoot: `projects/${project}` } : {}),
              options: { environment, label: `${project}-${environment}` },
            },
            { PATH: process.env.PATH, HOME: process.env.HOME, DEV_URL: url, STAGING_URL: url },
          ).done,
      ),
    );
    const outcomes = await Promise.all(runs);
    for (const outcome of outcomes)
      expect(outcome.result, outcome.stdout + outcome.stderr).toMatchObject({ status: 'success' });

    const backupRoot = path.join(root, '.fractary/plugins/faber-db/backups');
    const entries = await expectSoundCatalog(root, backupRoot);
    expect(entries).toHaveLength(8);
    expect(new Set(entries.map((entry) => `${entry.project}/${entry.environment}`)).size).toBe(8);
    expect(new Set(entries.map((entry) => entry.provider))).toEqual(new Set(['postgresql', 'mysql', 'sqlite']));
    expect((await filesUnder(backupRoot)).filter((name) => /\.partial$|\.tmp-|\.lock$/.test(name))).toEqual([]);
  });

  it('4 backups of the same project and environment in the same second: 4 distinct ids, 4 entries', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: postgres.url });
    roots.push(workspace.root);
    const now = '2025-06-01T12:00:00.000Z';
    const outcomes = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          runOperationChild(
            {
              operation: 'backup',
              workspaceRoot: workspace.root,
              projectName: 'api',
              options: { environment: 'dev', label: 'same' },
              now,
            },
            { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: postgres.url },
          ).done,
      ),
    );
    const ids = outcomes
      .map((outcome) => (outcome.result as { result: { backup_id: string } }).result.backup_id)
      .sort();
    expect(ids).toEqual([
      'backup-20250601-120000-same',
      'backup-20250601-120000-same-2',
      'backup-20250601-120000-same-3',
      'backup-20250601-120000-same-4',
    ]);
    expect(await expectSoundCatalog(workspace.root, workspace.backupRoot)).toHaveLength(4);
  });
});

describe('cleanup while a backup runs', () => {
  it('never deletes the in-progress backup (even when its .partial looks an hour old) and never loses its entry', async () => {
    const source = await track(freshPostgres());
    await seedBulk(source.url, 8);
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' }, backup: { min_keep: 1 } },
      { DEV_DATABASE_URL: source.url },
    );
    roots.push(workspace.root);
    // Three old backups, long expired: cleanup has work to do while the new one runs.
    for (const daysAgo of [300, 200, 100]) {
      const old = await createBackup(
        { environment: 'dev', retentionDays: 7 },
        workspace.ctx({ now: () => new Date(Date.now() - daysAgo * DAY_MS) }),
      );
      expect(old.status).toBe('success');
    }
    // A pg_dump that stalls for 3 s after its first megabyte, like one waiting on a lock.
    const bin = await mkdtemp(path.join(tmpdir(), 'faber-slow-bin-'));
    roots.push(bin);
    const realPgDump = (await execFileAsync('sh', ['-c', 'command -v pg_dump'])).stdout.trim();
    await writeFile(
      path.join(bin, 'pg_dump'),
      `#!/bin/bash\nset -o pipefail\nif [ "$1" = "--version" ]; then exec ${JSON.stringify(realPgDump)} --version; fi\n` +
        `${JSON.stringify(realPgDump)} "$@" | { dd bs=1M count=1 iflag=fullblock 2>/dev/null; sleep 3; cat; }\n`,
    );
    await chmod(path.join(bin, 'pg_dump'), 0o755);

    const backup = runOperationChild(
      {
        operation: 'backup',
        workspaceRoot: workspace.root,
        projectName: 'api',
        options: { environment: 'dev', label: 'in-progress' },
        announceProgress: true,
      },
      { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, DEV_DATABASE_URL: source.url },
    );
    await backup.progressed(1024 * 1024);
    const partial = (await filesUnder(workspace.backupRoot)).find((name) => name.endsWith('.partial'));
    expect(partial).toBeDefined();
    const anHourAgo = new Date(Date.now() - 3_600_000);
    await utimes(path.join(workspace.backupRoot, partial!), anHourAgo, anHourAgo);

    let cleanups = 0;
    let finished = false;
    const outcome = backup.done.finally(() => (finished = true));
    while (!finished) {
      const result = await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx());
      expect(result.status, JSON.stringify(result)).toBe('success');
      cleanups += 1;
    }
    expect((await outcome).result, JSON.stringify((await outcome).result) + (await outcome).stderr).toMatchObject({
      status: 'success',
    });
    const after = await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx());
    expect(after.status).toBe('success');

    const entries = await expectSoundCatalog(workspace.root, workspace.backupRoot);
    expect(entries.map((entry) => entry.label)).toEqual(['in-progress']);
    expect(cleanups).toBeGreaterThan(3);
  });
});

describe('the catalog lock', () => {
  let source: FreshDatabase;
  beforeAll(async () => {
    source = await track(freshSqlite());
    await seedAwkwardData('sqlite', source.url);
  });

  it('a lock left by a dead process is taken over: the backup is recorded', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: source.url });
    roots.push(workspace.root);
    await mkdir(workspace.backupRoot, { recursive: true });
    const lock = path.join(workspace.backupRoot, `${CATALOG_FILE_NAME}.lock`);
    await writeFile(
      lock,
      JSON.stringify({
        pid: await deadPid(),
        hostname: (await import('node:os')).hostname(),
        acquired_at: new Date(0).toISOString(),
        token: 'dead',
      }),
    );
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    expect(result.status, JSON.stringify(result)).toBe('success');
    expect(await expectSoundCatalog(workspace.root, workspace.backupRoot)).toHaveLength(1);
    expect(await filesUnder(workspace.backupRoot)).not.toContain(`${CATALOG_FILE_NAME}.lock`);
  });

  it('a live lock is waited for: the backup finishes after the holder lets go', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: source.url });
    roots.push(workspace.root);
    // Held far longer than a small SQLite backup takes: finishing before the holder lets go would mean it did not wait.
    const releasedMarker = path.join(workspace.root, 'lock-released');
    const holder = holdCatalogLock(workspace.backupRoot, 3000, releasedMarker);
    await holder.locked;
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    // The holder writes the marker just before it lets go, so it exists once the backup has finished
    // only if the backup waited for the release (a check no process-exit event can race).
    const waitedForRelease = await access(releasedMarker).then(
      () => true,
      () => false,
    );
    expect(await holder.done).toBe(0);
    expect(result.status, JSON.stringify(result)).toBe('success');
    expect(waitedForRelease).toBe(true);
    expect(await expectSoundCatalog(workspace.root, workspace.backupRoot)).toHaveLength(1);
  });
});
