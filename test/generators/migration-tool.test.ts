import {
  addProjectConfiguration,
  logger,
  readJson,
  readProjectConfiguration,
  updateProjectConfiguration,
  type TargetConfiguration,
  type Tree,
} from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configurationGenerator } from '../../generators/configuration/generator.ts';
import type { MigrationToolQuestion } from '../../generators/configuration/lib/migration-tool.ts';
import type { ConfigurationGeneratorOptions } from '../../generators/configuration/schema.d.ts';
import type { MigrationTool } from '../../src/config/schema.ts';

// The configuration generator finds the project's migration tool instead of assuming Prisma, and
// gives the migrate target it creates the tool's migrations folder as inputs.

const CONFIG = 'apps/api/.fractary/plugins/faber-db/config.json';

interface WrittenConfig {
  database: { migration_tool?: MigrationTool };
  migrations: { table?: string; directory?: string };
}

describe('migration tool detection', () => {
  let tree: Tree;
  let warnings: string[];
  let infos: string[];

  beforeEach(() => {
    tree = createTreeWithEmptyWorkspace({ formatter: 'none' });
    addProjectConfiguration(tree, 'api', { root: 'apps/api', projectType: 'application', targets: {} });
    warnings = [];
    infos = [];
    vi.spyOn(logger, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
    vi.spyOn(logger, 'info').mockImplementation((message: unknown) => void infos.push(String(message)));
  });

  afterEach(() => vi.restoreAllMocks());

  const run = (options: Partial<ConfigurationGeneratorOptions> = {}, ask: MigrationToolQuestion | null = null) =>
    configurationGenerator(
      tree,
      { project: 'api', provider: 'postgresql', environments: 'dev,production', ...options },
      ask,
    );
  const config = () => readJson<WrittenConfig>(tree, CONFIG);
  const migrate = (): TargetConfiguration | undefined => readProjectConfiguration(tree, 'api').targets?.['migrate'];

  it.each([
    ['prisma', 'apps/api/prisma/schema.prisma', 'datasource db { provider = "postgresql" }', '_prisma_migrations'],
    ['knex', 'apps/api/knexfile.ts', 'export default { client: "pg" };', 'knex_migrations'],
    [
      'drizzle',
      'apps/api/drizzle.config.ts',
      'export default defineConfig({ out: "./drizzle" });',
      'drizzle.__drizzle_migrations',
    ],
    [
      'typeorm',
      'apps/api/src/data-source.ts',
      'import { DataSource } from "typeorm";\nexport const AppDataSource = new DataSource({ type: "postgres" });',
      'migrations',
    ],
    ['flyway', 'apps/api/flyway.conf', 'flyway.url=jdbc:postgresql://localhost/app', 'flyway_schema_history'],
  ] as const)('%s is detected from %s', async (tool, file, content, table) => {
    tree.write(file, content);

    await run();

    expect(config().database.migration_tool).toBe(tool);
    expect(config().migrations.table).toBe(table);
    expect(infos.join('\n')).toContain(`uses ${tool} (found ${file})`);
  });

  it('a data-source file that is not TypeORM is not evidence', async () => {
    tree.write('apps/api/src/data-source.ts', 'export const source = "csv";');
    await expect(run()).rejects.toThrow(/found no migration tool/);
  });

  it('--migrationTool wins over what is found', async () => {
    tree.write('apps/api/knexfile.js', 'module.exports = {};');
    await run({ migrationTool: 'flyway' });
    expect(config().database.migration_tool).toBe('flyway');
  });

  it('several tools without a terminal: an error naming them and the option, and nothing written', async () => {
    tree.write('apps/api/knexfile.js', 'module.exports = {};');
    tree.write('apps/api/prisma/schema.prisma', '');

    await expect(run()).rejects.toThrow(
      /found several migration tools \(prisma: apps\/api\/prisma\/schema\.prisma, knex: apps\/api\/knexfile\.js\).*--migrationTool=prisma\|knex\|none/,
    );
    expect(tree.exists(CONFIG)).toBe(false);
  });

  it('several tools on a terminal: asks, offering those found and none', async () => {
    tree.write('apps/api/knexfile.js', 'module.exports = {};');
    tree.write('apps/api/drizzle.config.ts', '');
    const asked: Array<readonly MigrationTool[]> = [];

    await run({}, (_question, choices) => {
      asked.push(choices);
      return Promise.resolve('drizzle');
    });

    expect(asked).toEqual([['knex', 'drizzle', 'none']]);
    expect(config().database.migration_tool).toBe('drizzle');
  });

  it('no tool on a terminal: asks among all of them', async () => {
    let offered: readonly MigrationTool[] = [];
    await run({}, (_question, choices) => {
      offered = choices;
      return Promise.resolve('none');
    });
    expect(offered).toEqual(['prisma', 'knex', 'drizzle', 'typeorm', 'flyway', 'none']);
    expect(config().database.migration_tool).toBe('none');
  });

  it('no tool without a terminal: requires the option', async () => {
    await expect(run()).rejects.toThrow(
      /found no migration tool .*Pass --migrationTool=prisma\|knex\|drizzle\|typeorm\|flyway\|none/,
    );
  });

  it('a knexfile at the workspace root counts for a project without its own', async () => {
    tree.write('knexfile.js', 'module.exports = {};');
    await run();
    expect(config().database.migration_tool).toBe('knex');
  });

  describe('--createMigrateTarget', () => {
    it('knex: the migrations folder as inputs and --env per configuration', async () => {
      tree.write('apps/api/knexfile.ts', '');

      await run({ createMigrateTarget: true });

      expect(migrate()).toEqual({
        executor: 'nx:run-commands',
        cache: false,
        inputs: ['{projectRoot}/migrations/**/*'],
        dependsOn: ['pre-migrate-backup'],
        options: { command: 'npx knex migrate:latest', cwd: '{projectRoot}' },
        configurations: {
          dev: { command: 'npx knex migrate:latest --env dev' },
          production: { command: 'npx knex migrate:latest --env production' },
        },
      });
    });

    it('typeorm: the folder that exists is the one recorded and used as inputs', async () => {
      tree.write('apps/api/src/data-source.ts', 'const source = new DataSource({});');
      tree.write(
        'apps/api/migrations/1700000000000-Init.ts',
        'export class Init1700000000000 implements MigrationInterface {}',
      );

      await run({ createMigrateTarget: true });

      expect(config().migrations.directory).toBe('migrations');
      expect(migrate()?.inputs).toEqual(['{projectRoot}/migrations/**/*']);
      expect(migrate()?.configurations).toEqual({ dev: {}, production: {} });
    });
  });

  it('an existing migrate target without inputs is wired, with a warning saying what to add', async () => {
    tree.write('apps/api/prisma/schema.prisma', '');
    updateProjectConfiguration(tree, 'api', {
      ...readProjectConfiguration(tree, 'api'),
      targets: {
        migrate: {
          executor: 'nx:run-commands',
          options: { command: 'npx prisma migrate deploy' },
          configurations: { dev: {}, production: {} },
        },
      },
    });

    await run();

    expect(migrate()?.dependsOn).toEqual(['pre-migrate-backup']);
    expect(migrate()?.inputs).toBeUndefined();
    expect(warnings).toEqual([expect.stringContaining('api:migrate has no "inputs"')]);
    expect(warnings[0]).toContain('Add "inputs": ["{projectRoot}/prisma/migrations/**/*"] to it');
  });
});
