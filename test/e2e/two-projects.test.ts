import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { PACKAGE_NAME } from '../../src/version.ts';
import { freshPostgres, type FreshDatabase } from '../support/databases.ts';
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
} from './support/projects.ts';
import { NX_VERSION } from './support/plugin-install.ts';
import {
  BACKUP_DIRECTORY,
  CATALOG_FILE,
  createWorkspace,
  describeRun,
  expectSuccess,
  operationResults,
  type E2eWorkspace,
} from './support/workspace.ts';

/** Nx 24 selects tasks by their inputs for `nx affected`; Nx 23 selects whole projects. */
const TASK_LEVEL_AFFECTED = Number(NX_VERSION.split('.')[0]) >= 24;

/**
 * Two projects, `api` and `web`, each with its own PostgreSQL database, sharing the workspace's
 * one backup catalog: parallel backups through run-many, and `nx affected -t migrate` in CI,
 * where only the project whose migrations changed is backed up and migrated.
 */

const PROJECTS = ['api', 'web'] as const;
type Project = (typeof PROJECTS)[number];
const URL_VARIABLE: Record<Project, string> = { api: 'API_DATABASE_URL', web: 'WEB_DATABASE_URL' };
const PLAN_MIGRATION = '20250301000000_add_plan';
const PLAN_MIGRATION_SQL = "ALTER TABLE users ADD COLUMN plan TEXT NOT NULL DEFAULT 'free';\n";

interface Catalog {
  backups: BackupEntry[];
}

describe('nx with @faber-db/nx in a workspace of two projects', () => {
  let ws: E2eWorkspace;
  const databases = {} as Record<Project, FreshDatabase>;

  const catalog = () => (ws.exists(CATALOG_FILE) ? ws.readJson<Catalog>(CATALOG_FILE).backups : []);
  const runs = () => migrateRuns(ws.exists(MIGRATE_RUNS_LOG) ? ws.read(MIGRATE_RUNS_LOG) : undefined);

  function projectFiles(project: Project): Record<string, string | object> {
    return {
      [`apps/${project}/project.json`]: {
        name: project,
        projectType: 'application',
        targets: {
          migrate: migrateTarget({
            runner: 'sh tools/migrate-postgres.sh',
            urlVariables: { production: URL_VARIABLE[project] },
          }),
        },
      },
      [`apps/${project}/prisma/migrations/${INIT_MIGRATION}/migration.sql`]: INIT_MIGRATION_SQL,
      [`apps/${project}/src/main.ts`]: `export const app = '${project}';\n`,
    };
  }

  beforeAll(async () => {
    [databases.api, databases.web] = await Promise.all([freshPostgres(), freshPostgres()]);
    await Promise.all(PROJECTS.map((project) => seedPostgres(databases[project])));
    ws = await createWorkspace({
      '.gitignore': `node_modules\n.nx/\n.env\n.env.*\n${MIGRATE_RUNS_LOG}\n`,
      '.env.production': PROJECTS.map((project) => `${URL_VARIABLE[project]}=${databases[project].url}\n`).join(''),
      'tools/migrate-postgres.sh': POSTGRES_MIGRATE_SCRIPT,
      ...projectFiles('api'),
      ...projectFiles('web'),
    });
    expectSuccess(ws.nx(['g', `${PACKAGE_NAME}:init`, '--no-interactive']));
    for (const project of PROJECTS) {
      expectSuccess(
        ws.nx([
          'g',
          `${PACKAGE_NAME}:configuration`,
          `--project=${project}`,
          '--provider=postgresql',
          '--environments=production',
          `--connectionStringEnvs=production=${URL_VARIABLE[project]}`,
          '--no-interactive',
        ]),
      );
    }
    ws.commit('set up faber-db');
  }, 300_000);

  afterAll(async () => {
    ws?.dispose();
    await Promise.all(PROJECTS.map((project) => databases[project]?.drop()));
  });

  it('run-many backs both projects up in parallel into the one catalog', () => {
    const run = ws.nx([
      'run-many',
      '-t',
      'backup',
      '-c',
      'production',
      '--parallel=2',
      '--output-style=static',
      '--json',
    ]);

    const entries = catalog();
    // Nothing on disk that the catalog does not know (a failed backup removes what it wrote).
    const idsOnDisk = new Set(
      ws
        .files(BACKUP_DIRECTORY)
        .flatMap((file) => /^(backup-\d{8}-\d{6}[a-z0-9-]*?)\./.exec(path.basename(file))?.[1] ?? []),
    );
    expect([...idsOnDisk].sort()).toEqual(entries.map((entry) => entry.backup_id).sort());
    expect(run.status, describeRun(run)).toBe(0);
    expect(
      operationResults(run.stdout)
        .map((result) => [result.project, result.status])
        .sort(),
    ).toEqual([
      ['api', 'success'],
      ['web', 'success'],
    ]);
    expect(entries.map((entry) => entry.project).sort()).toEqual(['api', 'web']);
    for (const entry of entries) {
      expect(entry.database_name).toBe(databases[entry.project as Project].name);
      expect(ws.exists(entry.file_path)).toBe(true);
    }
  });

  it("affected: a change outside the migrations folder migrates nothing (task-level affected reads migrate's inputs)", () => {
    const base = ws.git('rev-parse', 'HEAD').trim();
    ws.write('apps/api/src/main.ts', 'export const app = "api v2";\n');
    ws.commit('api: change the source');
    const before = catalog().length;
    const affectedTasks = (env: Record<string, string> = {}) => {
      const graph = expectSuccess(
        ws.nx(
          ['affected', '-t', 'migrate', '-c', 'production', `--base=${base}`, '--head=HEAD', '--graph=stdout'],
          env,
        ),
      );
      return Object.keys((JSON.parse(graph.stdout) as { tasks: { tasks: object } }).tasks.tasks).sort();
    };
    // Project-level affected (Nx 23, or Nx 24 with NX_LEGACY_AFFECTED) backs up and migrates api for any change in it.
    const projectLevel = ['api:migrate:production', 'api:pre-migrate-backup:production'];

    if (!TASK_LEVEL_AFFECTED) {
      expect(affectedTasks()).toEqual(projectLevel);
      return;
    }
    const run = expectSuccess(
      ws.nx(['affected', '-t', 'migrate', '-c', 'production', `--base=${base}`, '--head=HEAD']),
    );

    expect(run.stdout + run.stderr).toMatch(/No tasks were run/);
    expect(catalog()).toHaveLength(before);
    expect(runs()).toEqual([]);
    expect(affectedTasks({ NX_LEGACY_AFFECTED: 'true' })).toEqual(projectLevel);
  });

  it('affected: only the project whose migrations changed gets a safety backup and a migration', async () => {
    const base = ws.git('rev-parse', 'HEAD').trim();
    ws.write(`apps/web/prisma/migrations/${ORDERS_MIGRATION}/migration.sql`, ORDERS_MIGRATION_SQL);
    ws.commit('web: add orders');
    const before = catalog().length;

    expectSuccess(ws.nx(['affected', '-t', 'migrate', '-c', 'production', `--base=${base}`, '--head=HEAD']));

    const added = catalog().slice(before);
    expect(
      added.map((entry) => [entry.project, entry.environment, entry.reason, entry.migrations.applied_count]),
    ).toEqual([['web', 'production', 'pre-migration', 1]]);
    expect(runs()).toEqual(['web:production']);
    expect(await appliedMigrations(databases.web)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
    expect(await appliedMigrations(databases.api)).toEqual([INIT_MIGRATION]);
  });

  it('affected: two projects with new migrations are both backed up (in parallel) and both migrated', async () => {
    const base = ws.git('rev-parse', 'HEAD').trim();
    ws.write(`apps/api/prisma/migrations/${ORDERS_MIGRATION}/migration.sql`, ORDERS_MIGRATION_SQL);
    ws.write(`apps/web/prisma/migrations/${PLAN_MIGRATION}/migration.sql`, PLAN_MIGRATION_SQL);
    ws.commit('api: add orders; web: add plan');
    const before = catalog().length;

    const run = ws.nx([
      'affected',
      '-t',
      'migrate',
      '-c',
      'production',
      `--base=${base}`,
      '--head=HEAD',
      '--parallel=2',
    ]);

    const added = catalog().slice(before);
    expect(added.map((entry) => [entry.project, entry.reason, entry.migrations.applied_count]).sort()).toEqual([
      ['api', 'pre-migration', 1],
      ['web', 'pre-migration', 2],
    ]);
    expect(run.status, describeRun(run)).toBe(0);
    expect(await appliedMigrations(databases.api)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION]);
    expect(await appliedMigrations(databases.web)).toEqual([INIT_MIGRATION, ORDERS_MIGRATION, PLAN_MIGRATION]);
  });
});
