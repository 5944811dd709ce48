import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { PACKAGE_NAME } from '../../src/version.ts';
import {
  INIT_MIGRATION,
  INIT_MIGRATION_SQL,
  migrateRuns,
  migrateTarget,
  MIGRATE_RUNS_LOG,
  ORDERS_MIGRATION,
  ORDERS_MIGRATION_SQL,
  PRISMA_MIGRATIONS_TABLE_SQLITE,
  SQLITE_MIGRATE_SCRIPT,
  USER_COUNT,
} from './support/projects.ts';
import {
  BACKUP_DIRECTORY,
  CATALOG_FILE,
  CONFIG_FILE,
  createWorkspace,
  expectSuccess,
  operationResult,
  type E2eWorkspace,
} from './support/workspace.ts';

/**
 * The embedded default: a project on SQLite files inside the workspace, no database server and
 * no client tool. Set-up by the generators, a backup, migrate with its safety backup, list, and
 * a restore into another file, all through the real `nx`.
 */

const SHOP_ROOT = 'apps/shop';
const DATABASE_FILES = { production: 'data/production.db', dev: 'data/dev.db', restored: 'data/restored.db' };

/** A GitHub Actions run as the backup sees it; the commit comes from git (a CI's GITHUB_SHA is cleared). */
const CI_RUN = {
  GITHUB_RUN_ID: '9001',
  GITHUB_SERVER_URL: 'https://github.example',
  GITHUB_REPOSITORY: 'acme/shop',
  GITHUB_SHA: '',
  CI_COMMIT_SHA: '',
};

interface Catalog {
  backups: BackupEntry[];
}

describe('nx with @faber-db/nx on SQLite', () => {
  let ws: E2eWorkspace;
  let firstBackupId: string;
  let preMigrationBackupId: string;

  const catalog = () => ws.readJson<Catalog>(CATALOG_FILE).backups;
  const databasePath = (file: string) => path.join(ws.root, file);

  function seed(file: string): void {
    mkdirSync(path.dirname(databasePath(file)), { recursive: true });
    const db = new DatabaseSync(databasePath(file));
    try {
      db.exec(PRISMA_MIGRATIONS_TABLE_SQLITE);
      db.exec(INIT_MIGRATION_SQL);
      const insert = db.prepare('INSERT INTO users (id, email, name) VALUES (?, ?, ?)');
      for (let i = 1; i <= USER_COUNT; i++) insert.run(i, `user${i}@example.test`, `User ${i} — ünïcødé`);
      db.prepare(
        "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ('init', 'e2e', ?, datetime('now'), 1)",
      ).run(INIT_MIGRATION);
    } finally {
      db.close();
    }
  }

  function query<T>(file: string, sql: string): T[] {
    const db = new DatabaseSync(databasePath(file), { readOnly: true });
    try {
      return db.prepare(sql).all() as T[];
    } finally {
      db.close();
    }
  }

  const migrations = (file: string) =>
    query<{ migration_name: string }>(
      file,
      'SELECT migration_name FROM _prisma_migrations ORDER BY migration_name',
    ).map((row) => row.migration_name);

  beforeAll(async () => {
    ws = await createWorkspace({
      '.gitignore': `node_modules\n.nx/\n.env\n.env.*\ndata/\n${MIGRATE_RUNS_LOG}\n`,
      // sqlite: URLs are relative to the workspace root.
      '.env.production': `PROD_DATABASE_URL=sqlite:${DATABASE_FILES.production}\nRESTORE_DATABASE_URL=sqlite:${DATABASE_FILES.restored}\n`,
      '.env.dev': `DEV_DATABASE_URL=sqlite:${DATABASE_FILES.dev}\n`,
      'tools/migrate-sqlite.mjs': SQLITE_MIGRATE_SCRIPT,
      [`${SHOP_ROOT}/project.json`]: {
        name: 'shop',
        projectType: 'application',
        targets: {
          migrate: migrateTarget({
            runner: 'node tools/migrate-sqlite.mjs',
            urlVariables: { dev: 'DEV_DATABASE_URL', production: 'PROD_DATABASE_URL' },
          }),
        },
      },
      [`${SHOP_ROOT}/prisma/migrations/${INIT_MIGRATION}/migration.sql`]: INIT_MIGRATION_SQL,
    });
    seed(DATABASE_FILES.production);
    seed(DATABASE_FILES.dev);
  }, 300_000);

  afterAll(() => ws?.dispose());

  it('init and configuration --provider=sqlite set the project up', () => {
    expectSuccess(ws.nx(['g', `${PACKAGE_NAME}:init`, '--no-interactive']));
    expectSuccess(
      ws.nx([
        'g',
        `${PACKAGE_NAME}:configuration`,
        '--project=shop',
        '--provider=sqlite',
        '--environments=dev,production',
        '--no-interactive',
      ]),
    );

    expect(ws.readJson(`${SHOP_ROOT}/${CONFIG_FILE}`)).toMatchObject({
      database: { provider: 'sqlite' },
      environments: {
        dev: { connection_string_env: 'DEV_DATABASE_URL' },
        production: { connection_string_env: 'PROD_DATABASE_URL' },
      },
    });
    const targets = ws.readJson<{ targets: Record<string, Record<string, unknown>> }>(
      `${SHOP_ROOT}/project.json`,
    ).targets;
    expect(targets['migrate']?.['dependsOn']).toEqual(['pre-migrate-backup']);
    expect(targets['backup']).toMatchObject({ executor: `${PACKAGE_NAME}:backup`, cache: false });
    ws.commit('set up faber-db');
  });

  it('backs the production file up', () => {
    const result = operationResult<{ backup_id: string; file_path: string; migrations: { applied_count: number } }>(
      expectSuccess(ws.nx(['run', 'shop:backup:production', '--label=first', '--json'])),
    );

    expect(result.status).toBe('success');
    expect(result.result.file_path).toMatch(
      new RegExp(`^${BACKUP_DIRECTORY}/shop/production/backup-\\d{8}-\\d{6}-first\\.sqlite\\.zst$`),
    );
    expect(ws.exists(result.result.file_path)).toBe(true);
    expect(result.result.migrations.applied_count).toBe(1);
    expect(catalog().map((entry) => entry.backup_id)).toEqual([result.result.backup_id]);
    firstBackupId = result.result.backup_id;
  });

  it('migrate:production takes the safety backup of the state before the migration, then migrates', () => {
    ws.write(`${SHOP_ROOT}/prisma/migrations/${ORDERS_MIGRATION}/migration.sql`, ORDERS_MIGRATION_SQL);
    const commit = ws.commit('add orders');

    const run = expectSuccess(ws.nx(['run', 'shop:migrate:production'], CI_RUN));

    expect(catalog().slice(1)).toMatchObject([
      {
        project: 'shop',
        environment: 'production',
        reason: 'pre-migration',
        migrations: { applied_count: 1, last_migration: INIT_MIGRATION, pending: [ORDERS_MIGRATION] },
        provenance: {
          git_commit: commit,
          ci_run: { provider: 'github-actions', id: '9001', url: 'https://github.example/acme/shop/actions/runs/9001' },
          nx_task: 'shop:pre-migrate-backup:production',
        },
      },
    ]);
    preMigrationBackupId = catalog()[1]?.backup_id ?? '';
    expect(run.stdout).toContain(`applied ${ORDERS_MIGRATION}`);
    expect(migrations(DATABASE_FILES.production)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
    expect(migrateRuns(ws.read(MIGRATE_RUNS_LOG))).toEqual(['shop:production']);
  });

  it('migrate:dev skips the backup and migrates', () => {
    const run = expectSuccess(ws.nx(['run', 'shop:migrate:dev']));

    expect(run.stdout).toMatch(/Backup skipped: backup_before_migrate is false for dev/);
    expect(catalog()).toHaveLength(2);
    expect(migrations(DATABASE_FILES.dev)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
  });

  it('migrate:production with nothing pending skips the safety backup with a clear line, then runs migrate', () => {
    const run = expectSuccess(ws.nx(['run', 'shop:migrate:production']));

    expect(run.stdout).toContain('Backup skipped: nothing to migrate: 2 applied, 0 pending; no backup taken');
    expect(catalog()).toHaveLength(2);
    expect(migrateRuns(ws.read(MIGRATE_RUNS_LOG))).toEqual(['shop:production', 'shop:dev', 'shop:production']);
  });

  it('list-backups lists both, newest first', () => {
    const result = operationResult<{ backups: BackupEntry[] }>(
      expectSuccess(ws.nx(['run', 'shop:list-backups:production', '--json'])),
    );

    expect(result.result.backups.map((entry) => entry.label)).toEqual(['pre-migration', 'first']);
  });

  it('restore puts the first backup into another file: the data from before the migration', () => {
    const result = operationResult<{ backup_id: string; migrations: { applied_count: number } }>(
      expectSuccess(
        ws.nx([
          'run',
          'shop:restore:production',
          `--from=${firstBackupId}`,
          '--targetConnectionStringEnv=RESTORE_DATABASE_URL',
          '--yes',
          '--json',
        ]),
      ),
    );

    expect(result).toMatchObject({
      status: 'success',
      result: { backup_id: firstBackupId, migrations: { applied_count: 1 } },
    });
    expect(migrations(DATABASE_FILES.restored)).toEqual([INIT_MIGRATION]);
    expect(query(DATABASE_FILES.restored, 'SELECT count(*) AS n, min(name) AS first FROM users')).toEqual([
      { n: USER_COUNT, first: 'User 1 — ünïcødé' },
    ]);
    expect(query(DATABASE_FILES.restored, "SELECT name FROM sqlite_master WHERE name = 'orders'")).toEqual([]);
    // The live production file is untouched by a restore elsewhere.
    expect(migrations(DATABASE_FILES.production)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
  });

  it('an unknown option is refused before anything happens: --form restores nothing, --lable backs nothing up', () => {
    const catalogBefore = ws.read(CATALOG_FILE);
    const filesBefore = ws.files(BACKUP_DIRECTORY);

    const restore = ws.nx([
      'run',
      'shop:restore:production',
      `--form=${firstBackupId}`,
      '--yes',
      '--outputFile=out/restore.json',
    ]);

    expect(restore.status).not.toBe(0);
    expect(restore.stdout).toContain('Error [INVALID_OPTION]: Unknown option --form for the restore executor');
    expect(restore.stdout).toContain('Did you mean `--from` instead of `--form`?');
    // --outputFile carries the failure too, for CI.
    expect(ws.readJson('out/restore.json')).toMatchObject({
      status: 'error',
      error_code: 'INVALID_OPTION',
      result: { unknown_options: ['form'] },
    });
    // Restoring the first backup would have taken the orders migration away.
    expect(migrations(DATABASE_FILES.production)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);

    const backup = ws.nx(['run', 'shop:backup:production', '--lable=x']);

    expect(backup.status).not.toBe(0);
    expect(backup.stdout).toContain('Did you mean `--label` instead of `--lable`?');
    expect(ws.read(CATALOG_FILE)).toBe(catalogBefore);
    expect(ws.files(BACKUP_DIRECTORY)).toEqual(filesBefore);
  });

  it('a generator refuses an unknown option with INVALID_OPTION and changes nothing', () => {
    const projectBefore = ws.read(`${SHOP_ROOT}/project.json`);

    const run = ws.nx([
      'g',
      `${PACKAGE_NAME}:configuration`,
      '--project=shop',
      '--provider=sqlite',
      '--enviroments=qa',
      '--force',
      '--no-interactive',
    ]);

    expect(run.status).not.toBe(0);
    expect(`${run.stdout}${run.stderr}`).toContain(
      'INVALID_OPTION: Unknown option --enviroments for the configuration generator',
    );
    expect(`${run.stdout}${run.stderr}`).toContain('Did you mean `--environments` instead of `--enviroments`?');
    expect(ws.read(`${SHOP_ROOT}/project.json`)).toBe(projectBefore);
    expect(ws.readJson(`${SHOP_ROOT}/${CONFIG_FILE}`)).not.toHaveProperty('environments.qa');
  });

  it('restore --beforeMigration picks the pre-migration backup taken while that migration was pending', () => {
    const result = operationResult<{ backup_id: string }>(
      expectSuccess(
        ws.nx([
          'run',
          'shop:restore:production',
          `--beforeMigration=${ORDERS_MIGRATION}`,
          '--targetConnectionStringEnv=RESTORE_DATABASE_URL',
          '--yes',
          '--json',
        ]),
      ),
    );

    expect(result.result.backup_id).toBe(preMigrationBackupId);
    expect(migrations(DATABASE_FILES.restored)).toEqual([INIT_MIGRATION]);
  });

  it('pin-backup pins an existing backup through its inferred-or-generated target; list-backups marks it', () => {
    const result = operationResult<{ backup_id: string; pinned: boolean; changed: boolean }>(
      expectSuccess(ws.nx(['run', 'shop:pin-backup:production', `--backupId=${firstBackupId}`, '--json'])),
    );

    expect(result.result).toMatchObject({ backup_id: firstBackupId, pinned: true, changed: true });
    expect(catalog().find((entry) => entry.backup_id === firstBackupId)?.pinned).toBe(true);
    const listing = expectSuccess(ws.nx(['run', 'shop:list-backups:production']));
    expect(listing.stdout.split('\n').find((line) => line.includes(firstBackupId))).toMatch(/pinned/);
  });

  it('--exclude-task-dependencies runs migrate without its safety backup (a caveat the README documents)', () => {
    const before = catalog().length;

    expectSuccess(ws.nx(['run', 'shop:migrate:production', '--exclude-task-dependencies']));

    expect(migrateRuns(ws.read(MIGRATE_RUNS_LOG))).toEqual([
      'shop:production',
      'shop:dev',
      'shop:production',
      'shop:production',
    ]);
    expect(catalog()).toHaveLength(before);
  });

  it('nx.json targetDefaults that turn caching on win over inferred targets, not over project.json (a caveat the README documents)', () => {
    ws.write('apps/worker/project.json', { name: 'worker', projectType: 'application' });
    ws.write(`apps/worker/${CONFIG_FILE}`, {
      schema_version: '1.0',
      database: { provider: 'sqlite' },
      environments: { production: { connection_string_env: 'PROD_DATABASE_URL' } },
    });
    ws.write('nx.json', {
      ...ws.readJson<Record<string, unknown>>('nx.json'),
      targetDefaults: { backup: { cache: true } },
    });

    const cacheOf = (project: string) =>
      (
        JSON.parse(expectSuccess(ws.nx(['show', 'project', project, '--json'])).stdout) as {
          targets: Record<string, { cache?: boolean }>;
        }
      ).targets['backup']?.cache;

    expect(cacheOf('worker')).toBe(true);
    expect(cacheOf('shop')).toBe(false);
  });

  it('one broken config never breaks the workspace: its targets fail with CONFIG_INVALID, file, line and column', () => {
    ws.write('apps/billing/project.json', { name: 'billing', projectType: 'application' });
    const configFile = `apps/billing/${CONFIG_FILE}`;
    ws.write(
      configFile,
      '{\n  "schema_version": "1.0",\n  "database": { "provider": "sqlite" },\n  "environments": { "production": { "connection_string_env": "PROD_DATABASE_URL" } },\n}\n',
    );

    const projects = expectSuccess(ws.nx(['show', 'projects', '--json']));

    expect(JSON.parse(projects.stdout)).toEqual(expect.arrayContaining(['billing', 'shop']));
    expect(projects.stderr.split('\n').filter((line) => line.includes(configFile))).toEqual([
      `[@faber-db/nx] ${configFile}:4:85: not valid JSON: a trailing comma before "}".`,
    ]);
    const run = ws.nx(['run', 'billing:backup:production']);
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain(
      `Error [CONFIG_INVALID]: ${configFile}:4:85: not valid JSON: a trailing comma before "}"`,
    );

    ws.write(configFile, {
      schema_version: '1.0',
      database: { provider: 'sqlite' },
      environments: { production: { conection_string_env: 'PROD_DATABASE_URL' } },
    });
    const misspelt = ws.nx(['run', 'billing:backup:production']);

    expect(misspelt.status).not.toBe(0);
    expect(misspelt.stdout).toContain('Error [CONFIG_INVALID]');
    expect(misspelt.stdout).toContain(
      'environments.production: unknown field "conection_string_env" (did you mean "connection_string_env"?)',
    );
    expect(ws.files(`${BACKUP_DIRECTORY}/billing`)).toEqual([]);
  });

  it('a configuration the target does not have is named, with the ones it has and how to add it', () => {
    const catalogBefore = ws.read(CATALOG_FILE);

    const run = ws.nx(['run', 'shop:backup:staging']);

    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain(
      'Error [ENVIRONMENT_UNKNOWN]: The configuration "staging" was asked for, but the backup target of shop has only dev, production',
    );
    expect(run.stdout).toContain(`add it under "environments" in ${SHOP_ROOT}/${CONFIG_FILE}`);
    expect(ws.read(CATALOG_FILE)).toBe(catalogBefore);
  });
});
