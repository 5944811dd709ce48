import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createBackup,
  type BackupOptions,
  type BackupResultData,
  type SkippedBackupData,
} from '../../src/operations/backup.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { PRE_MIGRATE_BACKUP_OPTIONS } from '../../src/nx/targets.ts';
import {
  adminQuery,
  freshMysql,
  freshPostgres,
  freshSqlite,
  tracked,
  type FreshDatabase,
} from '../support/databases.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { succeeded } from '../support/results.ts';

// The pre-migrate backup against real migration tables: what the pre-migrate-backup target runs,
// with the project's migrations folder next to the database's history table.

const track = tracked();

const PRE_MIGRATE: BackupOptions = { environment: 'production', ...PRE_MIGRATE_BACKUP_OPTIONS };

async function put(root: string, file: string, content = ''): Promise<void> {
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), content);
}

function steps(workspace: TestWorkspace): string {
  return workspace.output.join('\n');
}

describe('pre-migrate backup on PostgreSQL with knex', () => {
  let db: FreshDatabase;
  let workspace: TestWorkspace;

  beforeAll(async () => {
    db = await track(freshPostgres());
    // knex's own tables, as `knex migrate:latest` creates them.
    await adminQuery(
      'postgresql',
      [
        `CREATE TABLE knex_migrations (id serial PRIMARY KEY, name varchar(255), batch integer, migration_time timestamptz);
       CREATE TABLE knex_migrations_lock (index serial PRIMARY KEY, is_locked integer);
       CREATE TABLE users (id int PRIMARY KEY, email text);
       INSERT INTO users VALUES (1, 'a@example.test');
       INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('20240101_users.js', 1, now()), ('20240102_posts.js', 1, now());`,
      ],
      db.name,
    );
    workspace = await makeWorkspace(
      { database: { provider: 'postgresql', migration_tool: 'knex' } },
      {
        PROD_DATABASE_URL: db.url,
        GITHUB_RUN_ID: '4242',
        GITHUB_SERVER_URL: 'https://github.example',
        GITHUB_REPOSITORY: 'acme/api',
      },
    );
    await put(workspace.root, 'migrations/20240101_users.js');
    await put(workspace.root, 'migrations/20240102_posts.js');
  });

  it('nothing pending: skipped with a clear line, nothing recorded', async () => {
    const result = succeeded(await createBackup(PRE_MIGRATE, workspace.ctx())) as SkippedBackupData;

    expect(result).toEqual({ skipped: true, reason: 'nothing to migrate: 2 applied, 0 pending' });
    expect(steps(workspace)).toContain('Backup skipped: nothing to migrate: 2 applied, 0 pending; no backup taken');
    expect((await workspace.catalog.read()).entries).toEqual([]);
  });

  it('skipIfNothingPending: false backs up even then', async () => {
    const result = succeeded(
      await createBackup({ ...PRE_MIGRATE, skipIfNothingPending: false }, workspace.ctx()),
    ) as BackupResultData;

    const [entry] = (await workspace.catalog.read()).entries;
    expect(entry?.backup_id).toBe(result.backup_id);
    expect(entry?.migrations).toMatchObject({ applied_count: 2, pending: [] });
  });

  it('a new migration file: backs up, recording it as pending next to the applied ones, with commit, CI run and Nx task', async () => {
    await put(workspace.root, 'migrations/20240201_tags.js');
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.test', ...args], {
        cwd: workspace.root,
        encoding: 'utf8',
      }).trim();
    git('init', '-q');
    git('add', 'migrations');
    git('commit', '-q', '-m', 'migrations');
    const commit = git('rev-parse', 'HEAD');

    const result = succeeded(
      await createBackup(PRE_MIGRATE, workspace.ctx({ taskId: 'api:pre-migrate-backup:production' })),
    ) as BackupResultData;

    expect(result.migrations).toEqual({
      applied_count: 2,
      last_migration: '20240102_posts.js',
      pending: ['20240201_tags.js'],
    });
    const entry = (await workspace.catalog.read()).entries.find(
      (candidate) => candidate.backup_id === result.backup_id,
    );
    expect(entry?.migrations).toMatchObject({
      tool: 'knex',
      migrations_list: ['20240101_users.js', '20240102_posts.js'],
      pending: ['20240201_tags.js'],
    });
    expect(entry?.provenance).toEqual({
      git_commit: commit,
      ci_run: { provider: 'github-actions', id: '4242', url: 'https://github.example/acme/api/actions/runs/4242' },
      nx_task: 'api:pre-migrate-backup:production',
    });
    expect(steps(workspace)).toContain('Migrations to run: 1 pending (20240201_tags.js), 2 applied');
  });

  it('no migrations folder: it cannot tell, so it backs up', async () => {
    const other = await makeWorkspace(
      { database: { provider: 'postgresql', migration_tool: 'knex' }, migrations: { directory: 'db/none' } },
      { PROD_DATABASE_URL: db.url, CI_JOB_ID: '77', CI_JOB_URL: 'https://ci.example/77' },
    );

    const result = succeeded(await createBackup(PRE_MIGRATE, other.ctx())) as BackupResultData;

    expect(result.backup_id).toBeDefined();
    expect(steps(other)).toContain(
      'Cannot tell which migrations are pending (no knex migrations folder (looked for db/none',
    );
    const [entry] = (await other.catalog.read()).entries;
    expect(entry?.migrations.pending).toBeUndefined();
    expect(entry?.migrations.pending_unknown_reason).toContain('db/none');
    expect(entry?.provenance).toMatchObject({
      git_commit: null,
      ci_run: { provider: 'ci', id: '77', url: 'https://ci.example/77' },
      nx_task: null,
    });
  });
});

describe('pre-migrate backup on MariaDB with prisma', () => {
  it('records the pending folder, and skips once the table lists it', async () => {
    const db = await track(freshMysql());
    await adminQuery(
      'mysql',
      [
        `CREATE TABLE _prisma_migrations (id VARCHAR(36) NOT NULL PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3) NULL,
         migration_name VARCHAR(255) NOT NULL, logs TEXT NULL, rolled_back_at DATETIME(3) NULL,
         started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count INT UNSIGNED NOT NULL DEFAULT 0)`,
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('1', 'c', NOW(3), '20240101000000_init')",
        // A failed attempt is not applied: it is still pending.
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, rolled_back_at) VALUES ('2', 'c', NULL, '20240201000000_orders', NOW(3))",
      ],
      db.name,
    );
    const workspace = await makeWorkspace(
      { database: { provider: 'mysql', migration_tool: 'prisma' } },
      { PROD_DATABASE_URL: db.url },
    );
    await put(workspace.root, 'prisma/migrations/20240101000000_init/migration.sql', 'x');
    await put(workspace.root, 'prisma/migrations/20240201000000_orders/migration.sql', 'y');
    await put(workspace.root, 'prisma/migrations/migration_lock.toml', 'provider = "mysql"');

    const result = succeeded(await createBackup(PRE_MIGRATE, workspace.ctx())) as BackupResultData;
    expect(result.migrations).toEqual({
      applied_count: 1,
      last_migration: '20240101000000_init',
      pending: ['20240201000000_orders'],
    });

    await adminQuery(
      'mysql',
      [
        "INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('3', 'c', NOW(3), '20240201000000_orders')",
      ],
      db.name,
    );
    const skipped = succeeded(await createBackup(PRE_MIGRATE, workspace.ctx())) as SkippedBackupData;
    expect(skipped.reason).toBe('nothing to migrate: 2 applied, 0 pending');
    expect((await workspace.catalog.read()).entries).toHaveLength(1);
  });
});

describe('restore --beforeMigration (SQLite with drizzle)', () => {
  let db: FreshDatabase;
  let workspace: TestWorkspace;
  const migrationSql: Record<string, string> = {
    '0000_items': 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);',
    '0001_price': 'ALTER TABLE items ADD COLUMN price INTEGER;',
    '0002_stock': 'ALTER TABLE items ADD COLUMN stock INTEGER;',
  };
  const backupIds: Record<string, string> = {};

  function sqlite<T>(work: (database: DatabaseSync) => T): T {
    const database = new DatabaseSync(db.name);
    try {
      return work(database);
    } finally {
      database.close();
    }
  }

  async function addMigrationFile(tag: string): Promise<void> {
    const tags = Object.keys(migrationSql).filter((known) => known <= tag);
    await put(workspace.root, `drizzle/${tag}.sql`, migrationSql[tag]);
    await put(
      workspace.root,
      'drizzle/meta/_journal.json',
      JSON.stringify({
        version: '7',
        dialect: 'sqlite',
        entries: tags.map((known, idx) => ({ idx, when: idx + 1, tag: known, breakpoints: true })),
      }),
    );
  }

  /** What drizzle's migrator does: run the SQL, record its hash; then the app writes rows. */
  function applyMigration(tag: string, rows: number): void {
    const sql = migrationSql[tag] ?? '';
    sqlite((database) => {
      database.exec(sql);
      database
        .prepare('INSERT INTO __drizzle_migrations (hash, created_at) VALUES (?, ?)')
        .run(createHash('sha256').update(sql).digest('hex'), Date.now());
      for (let i = 0; i < rows; i++) database.prepare('INSERT INTO items (name) VALUES (?)').run(`${tag}-${i}`);
    });
  }

  const itemCount = () =>
    sqlite((database) => Number((database.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n));

  beforeAll(async () => {
    db = await track(freshSqlite());
    sqlite((database) =>
      database.exec(
        'CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, hash text NOT NULL, created_at numeric)',
      ),
    );
    workspace = await makeWorkspace(
      { database: { provider: 'sqlite', migration_tool: 'drizzle' } },
      { PROD_DATABASE_URL: db.url },
    );
    await addMigrationFile('0000_items');
    applyMigration('0000_items', 3);
    for (const tag of ['0001_price', '0002_stock']) {
      await addMigrationFile(tag);
      const backup = succeeded(await createBackup(PRE_MIGRATE, workspace.ctx())) as BackupResultData;
      expect(backup.migrations.pending).toEqual([tag]);
      backupIds[tag] = backup.backup_id;
      applyMigration(tag, 2);
    }
    expect(itemCount()).toBe(7);
  });

  it('restores the newest verified pre-migration backup taken while that migration was pending', async () => {
    const result = succeeded(
      await restoreBackup({ environment: 'production', beforeMigration: '0001_price', yes: true }, workspace.ctx()),
    );

    expect(result.backup_id).toBe(backupIds['0001_price']);
    expect(itemCount()).toBe(3);
    const columns = sqlite((database) =>
      database
        .prepare('SELECT name FROM pragma_table_info(?)')
        .all('items')
        .map((row) => row.name),
    );
    expect(columns).toEqual(['id', 'name']);
  });

  it('an unknown migration name is BACKUP_NOT_FOUND; --from with it is INVALID_OPTION', async () => {
    const unknown = await restoreBackup(
      { environment: 'production', beforeMigration: '0009_nope', yes: true },
      workspace.ctx(),
    );
    expect(unknown).toMatchObject({ status: 'error', error_code: 'BACKUP_NOT_FOUND' });
    const both = await restoreBackup(
      { environment: 'production', beforeMigration: '0001_price', from: backupIds['0002_stock'], yes: true },
      workspace.ctx(),
    );
    expect(both).toMatchObject({ status: 'error', error_code: 'INVALID_OPTION' });
  });
});
