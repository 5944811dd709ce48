import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../../src/version.ts';
import {
  adminQuery,
  createPasswordUser,
  freshPostgres,
  type FreshDatabase,
  type PasswordUser,
} from '../support/databases.ts';
import {
  appliedMigrations,
  INIT_MIGRATION,
  INIT_MIGRATION_SQL,
  migrateRuns,
  migrateTarget,
  MIGRATE_RUNS_LOG,
  ORDERS_MIGRATION,
  ORDERS_MIGRATION_SQL,
  POSTGRES_MIGRATE_SCRIPT,
  seedPostgres,
  USER_COUNT,
} from './support/projects.ts';
import {
  BACKUP_DIRECTORY,
  CATALOG_FILE,
  CONFIG_FILE,
  createWorkspace,
  describeRun,
  expectSuccess,
  operationResult,
  type E2eWorkspace,
} from './support/workspace.ts';

/**
 * One project, `api`, on real PostgreSQL databases, driven only through the real `nx` binary
 * with the packed plugin installed: set-up by the generators, a labelled backup, migrate with its
 * safety backup, a failing backup that stops migrate, and the other executors. The tests build
 * on each other in order (one workspace per file keeps the suite fast).
 */

const API_ROOT = 'apps/api';
/** Where GITHUB_STEP_SUMMARY points (GitHub's job summary file). */
const STEP_SUMMARY = 'step-summary.md';
const TARGETS = [
  'backup',
  'verify-backup',
  'list-backups',
  'delete-backup',
  'pin-backup',
  'cleanup-backups',
  'restore',
  'pre-migrate-backup',
];
/** Port 1 on loopback refuses at once: a database that is down. */
const UNREACHABLE_URL = 'postgres://postgres@127.0.0.1:1/faber_unreachable';

interface Catalog {
  backups: BackupEntry[];
}

describe('nx with @faber-db/nx on PostgreSQL', () => {
  let ws: E2eWorkspace;
  let production: PasswordUser;
  let dev: FreshDatabase;
  let restoreTarget: FreshDatabase;
  let labelledBackupId: string;

  const catalog = () => ws.readJson<Catalog>(CATALOG_FILE).backups;
  const runs = () => migrateRuns(ws.exists(MIGRATE_RUNS_LOG) ? ws.read(MIGRATE_RUNS_LOG) : undefined);

  beforeAll(async () => {
    [production, dev, restoreTarget] = await Promise.all([
      createPasswordUser('postgresql'),
      freshPostgres(),
      freshPostgres(),
    ]);
    await Promise.all([seedPostgres(production), seedPostgres(dev)]);
    ws = await createWorkspace({
      '.gitignore': `node_modules\n.nx/\n.env\n.env.*\n${MIGRATE_RUNS_LOG}\n`,
      // Nx loads .env.<configuration> into every task of that configuration: the plugin reads nothing else.
      '.env.production': `PROD_DATABASE_URL=${production.url}\nRESTORE_DATABASE_URL=${restoreTarget.url}\n`,
      '.env.dev': `DEV_DATABASE_URL=${dev.url}\n`,
      '.env.staging': `STAGING_DATABASE_URL=${UNREACHABLE_URL}\n`,
      'tools/migrate-postgres.sh': POSTGRES_MIGRATE_SCRIPT,
      [`${API_ROOT}/project.json`]: {
        name: 'api',
        $schema: '../../node_modules/nx/schemas/project-schema.json',
        projectType: 'application',
        targets: {
          migrate: migrateTarget({
            runner: 'sh tools/migrate-postgres.sh',
            urlVariables: { dev: 'DEV_DATABASE_URL', staging: 'STAGING_DATABASE_URL', production: 'PROD_DATABASE_URL' },
            defaultConfiguration: 'dev',
          }),
        },
      },
      [`${API_ROOT}/prisma/migrations/${INIT_MIGRATION}/migration.sql`]: INIT_MIGRATION_SQL,
      [`${API_ROOT}/src/main.ts`]: 'export const app = "api";\n',
    });
  }, 300_000);

  afterAll(async () => {
    ws?.dispose();
    // The restored tables belong to production's role (pg_dump keeps owners): drop them before the role.
    await restoreTarget?.drop();
    await Promise.all([production, dev].map((database) => database?.drop()));
  });

  it('init and configuration set the workspace and the project up, and a second run changes nothing', () => {
    expectSuccess(ws.nx(['g', `${PACKAGE_NAME}:init`, '--no-interactive']));
    expectSuccess(
      ws.nx(['g', `${PACKAGE_NAME}:configuration`, '--project=api', '--provider=postgresql', '--no-interactive']),
    );

    expect(ws.readJson('nx.json')['plugins']).toEqual([{ plugin: `${PACKAGE_NAME}/plugin`, options: {} }]);
    expect(ws.read('.gitignore').split('\n')).toContain(`${BACKUP_DIRECTORY}/`);
    expect(ws.readJson<{ devDependencies: Record<string, string> }>('package.json').devDependencies[PACKAGE_NAME]).toBe(
      `^${PACKAGE_VERSION}`,
    );

    const configPath = `${API_ROOT}/${CONFIG_FILE}`;
    const config = ws.readJson<{ $schema: string } & Record<string, unknown>>(configPath);
    expect(config).toMatchObject({
      schema_version: '1.0',
      database: { provider: 'postgresql', hosting: 'local', migration_tool: 'prisma' },
      environments: {
        dev: { connection_string_env: 'DEV_DATABASE_URL', backup_before_migrate: false },
        staging: { connection_string_env: 'STAGING_DATABASE_URL', backup_before_migrate: true, retention_days: 60 },
        production: {
          connection_string_env: 'PROD_DATABASE_URL',
          backup_before_migrate: true,
          retention_days: 90,
          require_approval: true,
        },
      },
      backup: { directory: BACKUP_DIRECTORY, format: 'sql', compression: 'zstd' },
      migrations: { table: '_prisma_migrations', directory: 'prisma/migrations' },
      safety: { protected_environments: ['production'] },
    });
    // The editor schema reference resolves to the installed package's generated schema.
    const schema = JSON.parse(
      readFileSync(path.join(ws.root, path.dirname(configPath), config.$schema), 'utf-8'),
    ) as object;
    expect(schema).toHaveProperty('properties.environments');

    const targets = ws.readJson<{ targets: Record<string, Record<string, unknown>> }>(
      `${API_ROOT}/project.json`,
    ).targets;
    for (const name of TARGETS) {
      expect(targets[name], name).toMatchObject({
        executor: `${PACKAGE_NAME}:${name === 'pre-migrate-backup' ? 'backup' : name}`,
        cache: false,
        configurations: {
          dev: { environment: 'dev' },
          staging: { environment: 'staging' },
          production: { environment: 'production' },
        },
        // migrate's default configuration, which Nx does not pass on to dependencies by itself.
        defaultConfiguration: 'dev',
      });
    }
    expect(targets['pre-migrate-backup']?.['options']).toEqual({
      reason: 'pre-migration',
      label: 'pre-migration',
      yes: true,
      skipIfNotRequired: true,
      skipIfNothingPending: true,
    });
    expect(targets['migrate']?.['dependsOn']).toEqual(['pre-migrate-backup']);

    const head = ws.commit('set up faber-db');
    expectSuccess(ws.nx(['g', `${PACKAGE_NAME}:init`, '--no-interactive']));
    expectSuccess(
      ws.nx(['g', `${PACKAGE_NAME}:configuration`, '--project=api', '--provider=postgresql', '--no-interactive']),
    );
    expect(ws.git('status', '--porcelain')).toBe('');
    expect(ws.git('rev-parse', 'HEAD').trim()).toBe(head);
  });

  it('backs up production with a label, reading the URL from .env.production', () => {
    const run = expectSuccess(
      ws.nx(['run', 'api:backup:production', '--label=pre-v2-migration', '--json'], {
        GITHUB_STEP_SUMMARY: path.join(ws.root, STEP_SUMMARY),
      }),
    );
    const result = operationResult<{
      backup_id: string;
      file_path: string;
      checksum: { value: string };
      migrations: { applied_count: number };
    }>(run);

    expect(result).toMatchObject({
      status: 'success',
      operation: 'create-backup',
      project: 'api',
      environment: 'production',
    });
    expect(result.result.backup_id).toMatch(/^backup-\d{8}-\d{6}-pre-v2-migration$/);
    expect(result.result.file_path).toMatch(new RegExp(`^${BACKUP_DIRECTORY}/api/production/backup-.*\\.sql\\.zst$`));
    expect(ws.exists(result.result.file_path)).toBe(true);
    expect(result.result.migrations.applied_count).toBe(1);
    const entry = catalog().find((backup) => backup.backup_id === result.result.backup_id);
    expect(entry).toMatchObject({
      project: 'api',
      environment: 'production',
      database_name: production.name,
      label: 'pre-v2-migration',
      file_path: result.result.file_path,
      checksum: { value: result.result.checksum.value },
    });
    // GitHub's job summary gets the id, the size, the verification and the restore command.
    const summary = ws.read(STEP_SUMMARY);
    expect(summary).toContain('### ✅ Backup of api (production)');
    expect(summary).toContain(`| Backup id | \`${result.result.backup_id}\` |`);
    expect(summary).toMatch(/\| Size \| [\d.]+ [KM]?B \(zstd\) \|/);
    expect(summary).toContain('| Verification | checksum and integrity check passed |');
    expect(summary).toContain(`| Restore with | \`nx run api:restore:production --from=${result.result.backup_id}\` |`);
    // The password is in .env.production only: never in nx's output, the catalog or the job summary.
    for (const text of [run.stdout, run.stderr, ws.read(CATALOG_FILE), summary]) {
      expect(text).not.toContain(production.password);
      expect(text).not.toContain(encodeURIComponent(production.password));
    }
    labelledBackupId = result.result.backup_id;
  });

  it('migrate:production takes the safety backup of the state before the migration, then migrates', async () => {
    ws.write(`${API_ROOT}/prisma/migrations/${ORDERS_MIGRATION}/migration.sql`, ORDERS_MIGRATION_SQL);
    ws.commit('add orders');
    const before = catalog().length;

    const run = expectSuccess(ws.nx(['run', 'api:migrate:production']));

    const added = catalog().slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({
      project: 'api',
      environment: 'production',
      reason: 'pre-migration',
      label: 'pre-migration',
      migrations: { applied_count: 1, last_migration: INIT_MIGRATION, migrations_list: [INIT_MIGRATION] },
    });
    expect(run.stdout).toContain(`applied ${ORDERS_MIGRATION}`);
    expect(await appliedMigrations(production)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
    const backupLine = run.stdout.indexOf('api:pre-migrate-backup:production');
    expect(backupLine, describeRun(run)).toBeGreaterThanOrEqual(0);
    expect(backupLine).toBeLessThan(run.stdout.indexOf(`applied ${ORDERS_MIGRATION}`));
  });

  it('migrate:dev skips the backup where backup_before_migrate is false, and migrates', async () => {
    const before = catalog().length;

    const run = expectSuccess(ws.nx(['run', 'api:migrate:dev']));

    expect(run.stdout).toMatch(/Backup skipped: backup_before_migrate is false for dev/);
    expect(catalog()).toHaveLength(before);
    expect(await appliedMigrations(dev)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
  });

  it('a backup that fails stops migrate: it never starts', () => {
    const before = catalog().length;

    const run = ws.nx(['run', 'api:migrate:staging']);

    expect(run.status, describeRun(run)).not.toBe(0);
    expect(run.stdout).toContain('❌ FAILED: Backup Manager');
    expect(run.stdout).toContain('127.0.0.1:1');
    expect(run.stdout + run.stderr).toMatch(
      /Tasks not run because their dependencies failed[^]*- api:migrate:staging[^]*Failed tasks:[^]*- api:pre-migrate-backup:staging/,
    );
    expect(runs()).toEqual(['api:production', 'api:dev']);
    expect(catalog()).toHaveLength(before);
    expect(ws.files(`${BACKUP_DIRECTORY}/api/staging`)).toEqual([]);
  });

  it('list-backups returns the catalog entries, newest first', () => {
    const result = operationResult<{ backups: BackupEntry[]; total: number }>(
      expectSuccess(ws.nx(['run', 'api:list-backups:production', '--json'])),
    );

    expect(result.status).toBe('success');
    expect(result.result.total).toBe(2);
    expect(result.result.backups.map((backup) => backup.label)).toEqual(['pre-migration', 'pre-v2-migration']);
    expect(result.result.backups[0]?.reason).toBe('pre-migration');
  });

  it('verify-backup --deep restores the labelled backup into a scratch database and finds it intact', () => {
    const run = expectSuccess(
      ws.nx(['run', 'api:verify-backup:production', `--backupId=${labelledBackupId}`, '--deep', '--json']),
    );
    const result = operationResult<{
      passed_count: number;
      failed_count: number;
      backups: Array<{ backup_id: string; restore_test: { status: string } | null }>;
    }>(run);

    expect(result.status).toBe('success');
    expect(result.result).toMatchObject({ passed_count: 1, failed_count: 0 });
    expect(result.result.backups[0]).toMatchObject({ backup_id: labelledBackupId, restore_test: { status: 'passed' } });
    expect(catalog().find((backup) => backup.backup_id === labelledBackupId)?.verification.restore_test).toMatchObject({
      status: 'passed',
    });
  });

  it('restore puts the labelled backup into a second database: the data from before the migration', async () => {
    const run = expectSuccess(
      ws.nx(
        [
          'run',
          'api:restore:production',
          `--from=${labelledBackupId}`,
          '--targetConnectionStringEnv=RESTORE_DATABASE_URL',
          '--yes',
          '--json',
        ],
        {
          GITHUB_STEP_SUMMARY: path.join(ws.root, STEP_SUMMARY),
        },
      ),
    );
    const result = operationResult<{ backup_id: string; database_name: string; migrations: { applied_count: number } }>(
      run,
    );

    expect(result.status).toBe('success');
    expect(result.result).toMatchObject({
      backup_id: labelledBackupId,
      database_name: restoreTarget.name,
      migrations: { applied_count: 1 },
    });
    expect(await appliedMigrations(restoreTarget)).toEqual([INIT_MIGRATION]);
    const [users] = await adminQuery(
      'postgresql',
      ['SELECT count(*)::int AS n, min(name) AS first FROM users'],
      restoreTarget.name,
    );
    expect(users).toEqual({ n: USER_COUNT, first: 'User 1 — ünïcødé' });
    const [orders] = await adminQuery(
      'postgresql',
      [`SELECT to_regclass('public.orders') AS orders`],
      restoreTarget.name,
    );
    expect(orders).toEqual({ orders: null });
    const summary = ws.read(STEP_SUMMARY);
    expect(summary).toContain('### ✅ Restore of api (production)');
    expect(summary).toContain(`| Backup restored | \`${labelledBackupId}\` |`);
    expect(summary).not.toContain(production.password);
  });

  it('cleanup-backups --dryRun plans without deleting anything', () => {
    const files = catalog().map((backup) => backup.file_path);

    const run = expectSuccess(ws.nx(['run', 'api:cleanup-backups:production', '--dryRun', '--olderThan=0', '--json']));
    const result = operationResult<{
      dry_run: boolean;
      deleted: Array<{ backup_id: string }>;
      kept: Array<{ backup_id: string; reason: string }>;
    }>(run);

    expect(result.status).toBe('success');
    expect(result.result.dry_run).toBe(true);
    // Everything is older than 0 days; the safety backup is kept (pre-migration, younger than 90 days).
    expect(result.result.deleted.map((item) => item.backup_id)).toEqual([labelledBackupId]);
    expect(result.result.kept.map((item) => item.reason)).toEqual(['young-safety-backup']);
    expect(catalog().map((backup) => backup.file_path)).toEqual(files);
    for (const file of files) expect(ws.exists(file)).toBe(true);
  });
});
