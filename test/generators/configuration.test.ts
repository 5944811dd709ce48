import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import {
  addProjectConfiguration,
  logger,
  readJson,
  type ProjectConfiguration,
  readProjectConfiguration,
  type TargetConfiguration,
  type Tree,
} from '@nx/devkit';
import { FsTree } from '@nx/devkit/internal';
import { flushChanges } from 'nx/src/generators/tree';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { configurationGenerator } from '../../generators/configuration/generator.ts';
import type { ConfigurationGeneratorOptions } from '../../generators/configuration/schema.d.ts';
import { configSchema, type FaberConfig } from '../../src/config/schema.ts';
import { emptyWorkspace } from './empty-workspace.ts';
import { treeFiles } from './tree-files.ts';
import { arrayContaining } from '../support/matchers.ts';

const PROJECT_CONFIG = 'apps/api/.fractary/plugins/faber-db/config.json';
const WORKSPACE_CONFIG = '.fractary/plugins/faber-db/config.json';
const BACKUP_TARGETS = [
  'backup',
  'verify-backup',
  'list-backups',
  'delete-backup',
  'pin-backup',
  'cleanup-backups',
  'restore',
];

/** A Prisma project (the generator detects the tool from prisma/schema.prisma). */
function addApi(tree: Tree, targets: Record<string, TargetConfiguration> = {}): void {
  addProjectConfiguration(tree, 'api', { root: 'apps/api', projectType: 'application', targets });
  tree.write(
    'apps/api/prisma/schema.prisma',
    'datasource db {\n  provider = "postgresql"\n  url = env("DATABASE_URL")\n}\n',
  );
}

function run(tree: Tree, options: Partial<ConfigurationGeneratorOptions> = {}): Promise<void> {
  return configurationGenerator(tree, { project: 'api', provider: 'postgresql', ...options }, null);
}

function targetsOf(tree: Tree): Record<string, TargetConfiguration> {
  return readProjectConfiguration(tree, 'api').targets ?? {};
}

const runCommandsMigrate = (extra: Partial<TargetConfiguration> = {}): TargetConfiguration => ({
  executor: 'nx:run-commands',
  options: { command: 'npx prisma migrate deploy' },
  configurations: { dev: {}, staging: {}, production: {} },
  inputs: ['{projectRoot}/prisma/migrations/**/*'],
  ...extra,
});

/** A config file as the generator writes it. */
type WrittenConfig = FaberConfig & { $schema: string };

describe('configuration generator', () => {
  let tree: Tree;
  let warnings: string[];

  beforeEach(() => {
    ({ tree, warnings } = emptyWorkspace());
  });

  afterEach(() => vi.restoreAllMocks());

  describe('in a fresh workspace', () => {
    beforeEach(async () => {
      addApi(tree, { migrate: runCommandsMigrate() });
      await run(tree);
    });

    it('writes a config that the config schema accepts, with the seed conventions', () => {
      const config = readJson<WrittenConfig>(tree, PROJECT_CONFIG);
      const parsed = configSchema.parse(config);

      expect(parsed.database).toEqual({ provider: 'postgresql', hosting: 'local', migration_tool: 'prisma' });
      expect(config.environments).toEqual({
        dev: { connection_string_env: 'DEV_DATABASE_URL', backup_before_migrate: false },
        staging: { connection_string_env: 'STAGING_DATABASE_URL', backup_before_migrate: true, retention_days: 60 },
        production: {
          connection_string_env: 'PROD_DATABASE_URL',
          backup_before_migrate: true,
          retention_days: 90,
          require_approval: true,
        },
      });
      expect(parsed.backup.directory).toBe('.fractary/plugins/faber-db/backups');
      expect(parsed.migrations).toEqual({ table: '_prisma_migrations', directory: 'prisma/migrations' });
      expect(parsed.safety.protected_environments).toEqual(['production']);
    });

    it('points $schema, relative to the config file, at the schema in node_modules', () => {
      const { $schema } = readJson<WrittenConfig>(tree, PROJECT_CONFIG);

      expect($schema).toBe('../../../../../node_modules/@faber-db/nx/schemas/config.schema.json');
      expect(posix.join(posix.dirname(PROJECT_CONFIG), $schema)).toBe(
        'node_modules/@faber-db/nx/schemas/config.schema.json',
      );
    });

    it('adds every backup target, uncached, with one configuration per environment', () => {
      const targets = targetsOf(tree);
      for (const name of BACKUP_TARGETS) {
        expect(targets[name]).toEqual({
          executor: `@faber-db/nx:${name}`,
          cache: false,
          options: {},
          configurations: {
            dev: { environment: 'dev' },
            staging: { environment: 'staging' },
            production: { environment: 'production' },
          },
        });
      }
    });

    it('adds pre-migrate-backup and makes migrate depend on it', () => {
      const targets = targetsOf(tree);

      expect(targets['pre-migrate-backup']).toEqual({
        executor: '@faber-db/nx:backup',
        cache: false,
        options: {
          reason: 'pre-migration',
          label: 'pre-migration',
          yes: true,
          skipIfNotRequired: true,
          skipIfNothingPending: true,
        },
        configurations: {
          dev: { environment: 'dev' },
          staging: { environment: 'staging' },
          production: { environment: 'production' },
        },
      });
      expect(targets['migrate']).toEqual(runCommandsMigrate({ dependsOn: ['pre-migrate-backup'] }));
    });

    it('ignores the backups directory in git', () => {
      expect(tree.read('.gitignore', 'utf-8')).toContain('\n.fractary/plugins/faber-db/backups/\n');
    });

    it('changes nothing at all on a second run', async () => {
      const first = treeFiles(tree);

      await run(tree);

      expect(treeFiles(tree)).toEqual(first);
      expect(warnings).toEqual([]);
    });
  });

  it("keeps the migrate target's other dependencies and adds pre-migrate-backup once", async () => {
    const dependsOn = ['build', { target: 'generate', params: 'forward' as const }];
    addApi(tree, { migrate: runCommandsMigrate({ dependsOn }) });

    await run(tree);
    await run(tree, { environments: 'dev,staging,production,qa' });

    expect(targetsOf(tree)['migrate']?.dependsOn).toEqual([...dependsOn, 'pre-migrate-backup']);
  });

  it('recognises an existing object-form dependency on pre-migrate-backup', async () => {
    const dependsOn = [{ target: 'pre-migrate-backup', params: 'ignore' as const }];
    addApi(tree, { migrate: runCommandsMigrate({ dependsOn }) });

    await run(tree);

    expect(targetsOf(tree)['migrate']?.dependsOn).toEqual(dependsOn);
  });

  it('gives the backup targets the defaultConfiguration of migrate', async () => {
    addApi(tree, { migrate: runCommandsMigrate({ defaultConfiguration: 'dev' }) });

    await run(tree);

    const targets = targetsOf(tree);
    for (const name of [...BACKUP_TARGETS, 'pre-migrate-backup'])
      expect(targets[name]?.defaultConfiguration).toBe('dev');
  });

  it('warns instead of copying a defaultConfiguration that is not an environment', async () => {
    addApi(tree, {
      migrate: runCommandsMigrate({ defaultConfiguration: 'development', configurations: { development: {} } }),
    });

    await run(tree);

    expect(targetsOf(tree)['pre-migrate-backup']?.defaultConfiguration).toBeUndefined();
    expect(warnings.join('\n')).toMatch(
      /defaults to the configuration "development", which is not a faber-db environment/,
    );
    expect(warnings.join('\n')).toMatch(/configurations with no faber-db environment: development/);
  });

  it('without a migrate target, still adds the backup targets and explains how to wire migrate', async () => {
    addApi(tree);

    await run(tree);

    const targets = targetsOf(tree);
    expect(Object.keys(targets)).toEqual([...BACKUP_TARGETS, 'pre-migrate-backup']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/no "migrate" target/);
    expect(warnings[0]).toContain('"dependsOn": ["pre-migrate-backup"]');
  });

  it('creates a placeholder migrate target with createMigrateTarget', async () => {
    addApi(tree);

    await run(tree, { createMigrateTarget: true, environments: 'dev,production' });

    expect(targetsOf(tree)['migrate']).toEqual({
      executor: 'nx:run-commands',
      cache: false,
      dependsOn: ['pre-migrate-backup'],
      inputs: ['{projectRoot}/prisma/migrations/**/*'],
      options: { command: 'npx prisma migrate deploy', cwd: '{projectRoot}' },
      configurations: { dev: {}, production: {} },
    });
  });

  it('makes a package.json migrate script depend on pre-migrate-backup', async () => {
    addApi(tree);
    tree.write('apps/api/package.json', JSON.stringify({ name: 'api', scripts: { migrate: 'prisma migrate deploy' } }));

    await run(tree);

    expect(targetsOf(tree)['migrate']).toEqual({ dependsOn: ['pre-migrate-backup'] });
    expect(warnings).toEqual([]);
  });

  it('wires a migrate target of another name', async () => {
    addApi(tree, { 'db-migrate': runCommandsMigrate() });

    await run(tree, { migrateTarget: 'db-migrate' });

    expect(targetsOf(tree)['db-migrate']?.dependsOn).toEqual(['pre-migrate-backup']);
    expect(targetsOf(tree)['migrate']).toBeUndefined();
  });

  describe('with an existing config', () => {
    const existing = {
      schema_version: '1.0',
      database: { provider: 'mysql' },
      environments: { dev: { connection_string_env: 'MY_DEV_URL', backup_before_migrate: true } },
      safety: { protected_environments: [] },
    };

    beforeEach(() => {
      addApi(tree, { migrate: runCommandsMigrate() });
      tree.write(PROJECT_CONFIG, `${JSON.stringify(existing, null, 2)}\n`);
    });

    it('keeps what is there and merges in the missing environments', async () => {
      await run(tree, { environments: 'dev,production' });

      expect(readJson(tree, PROJECT_CONFIG)).toEqual({
        ...existing,
        environments: {
          dev: existing.environments.dev,
          production: {
            connection_string_env: 'PROD_DATABASE_URL',
            backup_before_migrate: true,
            retention_days: 90,
            require_approval: true,
          },
        },
        safety: { protected_environments: ['production'] },
      });
      expect(warnings.join('\n')).toMatch(/already exists with provider "mysql"/);
      expect(Object.keys(targetsOf(tree)['backup']?.configurations ?? {})).toEqual(['dev', 'production']);
    });

    it('leaves the file byte for byte when no environment is missing', async () => {
      const before = tree.read(PROJECT_CONFIG, 'utf-8');

      await run(tree, { environments: 'dev', provider: 'mysql' });

      expect(tree.read(PROJECT_CONFIG, 'utf-8')).toBe(before);
    });

    it('without --environments, keeps the environments the config has', async () => {
      const before = tree.read(PROJECT_CONFIG, 'utf-8');

      await run(tree, { provider: 'mysql' });

      expect(tree.read(PROJECT_CONFIG, 'utf-8')).toBe(before);
      expect(Object.keys(targetsOf(tree)['backup']?.configurations ?? {})).toEqual(['dev']);
    });

    it('gives the targets the environments of the config file, not only those of the options', async () => {
      await run(tree, { environments: 'staging', provider: 'mysql' });

      expect(Object.keys(targetsOf(tree)['restore']?.configurations ?? {})).toEqual(['dev', 'staging']);
    });

    it('replaces the file with --force', async () => {
      await run(tree, { force: true, environments: 'dev' });

      const config = readJson<WrittenConfig>(tree, PROJECT_CONFIG);
      expect(config.database.provider).toBe('postgresql');
      expect(config.environments).toEqual({
        dev: { connection_string_env: 'DEV_DATABASE_URL', backup_before_migrate: false },
      });
    });

    it('refuses a file that is not JSON, unless --force', async () => {
      tree.write(PROJECT_CONFIG, '{ "schema_version": "1.0", ');

      await expect(run(tree)).rejects.toThrow(
        /apps\/api\/\.fractary\/plugins\/faber-db\/config\.json is not valid JSON.*--force/s,
      );
      await run(tree, { force: true });
      expect(configSchema.safeParse(readJson(tree, PROJECT_CONFIG)).success).toBe(true);
    });
  });

  it('adds configurations to its own existing targets and keeps what the user set', async () => {
    const customised: TargetConfiguration = {
      executor: '@faber-db/nx:backup',
      options: { label: 'nightly' },
      configurations: { dev: { environment: 'dev', compression: 'gzip' } },
    };
    addApi(tree, { migrate: runCommandsMigrate(), backup: customised });

    await run(tree, { environments: 'dev,production' });

    expect(targetsOf(tree)['backup']).toEqual({
      ...customised,
      cache: false,
      configurations: { dev: { environment: 'dev', compression: 'gzip' }, production: { environment: 'production' } },
    });
  });

  it('leaves alone a target of the same name that runs something else, unless --force', async () => {
    const theirs: TargetConfiguration = { executor: 'nx:run-commands', options: { command: './backup.sh' } };
    addApi(tree, { migrate: runCommandsMigrate(), backup: theirs });

    await run(tree);
    expect(targetsOf(tree)['backup']).toEqual(theirs);
    expect(warnings.join('\n')).toMatch(/already has a target "backup" that runs nx:run-commands/);

    await run(tree, { force: true });
    expect(targetsOf(tree)['backup']?.executor).toBe('@faber-db/nx:backup');
  });

  describe('scope', () => {
    beforeEach(() => addApi(tree, { migrate: runCommandsMigrate() }));

    it('workspace: writes the config at the workspace root', async () => {
      await run(tree, { scope: 'workspace' });

      expect(tree.exists(PROJECT_CONFIG)).toBe(false);
      const config = readJson<WrittenConfig>(tree, WORKSPACE_CONFIG);
      expect(config.$schema).toBe('../../../node_modules/@faber-db/nx/schemas/config.schema.json');
      expect(configSchema.safeParse(config).success).toBe(true);
      expect(targetsOf(tree)['backup']?.executor).toBe('@faber-db/nx:backup');
    });

    it('project at the workspace root: writes the config at the root', async () => {
      addProjectConfiguration(tree, 'root-app', { root: '.', targets: {} });

      await run(tree, { project: 'root-app', migrationTool: 'none' });

      expect(readJson<WrittenConfig>(tree, WORKSPACE_CONFIG).$schema).toBe(
        '../../../node_modules/@faber-db/nx/schemas/config.schema.json',
      );
    });

    it('project: writes the config in the project root only', async () => {
      await run(tree, { scope: 'project' });

      expect(tree.exists(WORKSPACE_CONFIG)).toBe(false);
      expect(tree.exists(PROJECT_CONFIG)).toBe(true);
    });
  });

  describe('options', () => {
    beforeEach(() => addApi(tree, { migrate: runCommandsMigrate() }));

    it('takes connection variables from connectionStringEnvs and names the rest by the rule', async () => {
      await run(tree, { environments: 'dev, qa-eu ,production', connectionStringEnvs: 'production=DATABASE_URL' });

      const { environments } = readJson<WrittenConfig>(tree, PROJECT_CONFIG);
      expect(environments['dev']?.connection_string_env).toBe('DEV_DATABASE_URL');
      expect(environments['qa-eu']).toEqual({
        connection_string_env: 'QA_EU_DATABASE_URL',
        backup_before_migrate: true,
      });
      expect(environments['production']?.connection_string_env).toBe('DATABASE_URL');
    });

    it('rejects a malformed connectionStringEnvs', async () => {
      await expect(run(tree, { connectionStringEnvs: 'production' })).rejects.toThrow(
        /environment=VARIABLE pairs, got "production"/,
      );
      await expect(run(tree, { connectionStringEnvs: 'prod=X' })).rejects.toThrow(
        /"prod", which is not in --environments/,
      );
      await expect(run(tree, { connectionStringEnvs: 'dev=1BAD' })).rejects.toThrow(
        /environments\.dev\.connection_string_env/,
      );
      expect(tree.exists(PROJECT_CONFIG)).toBe(false);
    });

    it('refuses an unknown option (a typo) with INVALID_OPTION and the intended name, and writes nothing', async () => {
      const before = treeFiles(tree);
      const typo = {
        project: 'api',
        provider: 'postgresql',
        enviroments: 'dev',
      } as unknown as ConfigurationGeneratorOptions;

      const error = await configurationGenerator(tree, typo).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );

      expect(error).toMatchObject({
        code: 'INVALID_OPTION',
        suggestions: arrayContaining(['Did you mean `--environments` instead of `--enviroments`?']),
      });
      expect(String((error as Error).message)).toMatch(
        /^INVALID_OPTION: Unknown option --enviroments for the configuration generator/,
      );
      expect(treeFiles(tree)).toEqual(before);
    });

    it('rejects an environment name that cannot be an Nx configuration', async () => {
      await expect(run(tree, { environments: 'dev,eu/prod' })).rejects.toThrow(/environments\.eu\/prod/);
    });

    it.each(['sqlite', 'mysql'] as const)('writes a valid config for %s', async (provider) => {
      await run(tree, { provider, migrationTool: 'drizzle' });

      const config = configSchema.parse(readJson(tree, PROJECT_CONFIG));
      expect(config.database.provider).toBe(provider);
      expect(config.migrations.table).toBe('__drizzle_migrations');
    });

    it.each(['knex', 'typeorm', 'flyway', 'none'] as const)(
      'writes a valid config for migration tool %s',
      async (migrationTool) => {
        await run(tree, { migrationTool });

        expect(configSchema.safeParse(readJson(tree, PROJECT_CONFIG)).success).toBe(true);
      },
    );
  });
});

describe('configuration generator on a workspace on disk', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'faber-generator-'));
    mkdirSync(join(root, 'apps/api'), { recursive: true });
    writeFileSync(join(root, 'nx.json'), '{}\n');
    writeFileSync(join(root, 'package.json'), '{ "name": "ws" }\n');
    writeFileSync(
      join(root, 'apps/api/project.json'),
      JSON.stringify({ name: 'api', root: 'apps/api', targets: { migrate: { command: 'echo migrate' } } }, null, 2),
    );
    vi.spyOn(logger, 'warn').mockImplementation(() => undefined);
    vi.spyOn(logger, 'info').mockImplementation(() => undefined);
  });

  afterEach(() => {
    vi.restoreAllMocks();
    rmSync(root, { recursive: true, force: true });
  });

  /** The workspace's files; Nx's own cache (.nx/workspace-data, written by its file globbing) aside. */
  function diskFiles(): Record<string, string> {
    const files = treeFiles(new FsTree(root, false));
    return Object.fromEntries(Object.entries(files).filter(([path]) => !path.startsWith('.nx/')));
  }

  it('writes nothing to disk until Nx flushes the tree (what --dry-run relies on)', async () => {
    const before = diskFiles();
    const tree = new FsTree(root, false);

    await configurationGenerator(tree, { project: 'api', provider: 'sqlite', migrationTool: 'none', skipFormat: true });

    expect(
      tree
        .listChanges()
        .map((change) => change.path)
        .sort(),
    ).toEqual(['.gitignore', 'apps/api/.fractary/plugins/faber-db/config.json', 'apps/api/project.json']);
    expect(diskFiles()).toEqual(before);
  });

  it('has no changes left to make once its output is on disk', async () => {
    const first = new FsTree(root, false);
    await configurationGenerator(first, {
      project: 'api',
      provider: 'sqlite',
      migrationTool: 'knex',
      skipFormat: true,
    });
    flushChanges(root, first.listChanges());

    const second = new FsTree(root, false);
    await configurationGenerator(second, { project: 'api', provider: 'sqlite', skipFormat: true });

    expect(second.listChanges()).toEqual([]);
    expect(
      (JSON.parse(readFileSync(join(root, 'apps/api/project.json'), 'utf-8')) as ProjectConfiguration).targets?.[
        'migrate'
      ]?.dependsOn,
    ).toEqual(['pre-migrate-backup']);
  });
});
