import { joinPathFragments, readProjectConfiguration, type Tree } from '@nx/devkit';
import type { MigrationTool, Provider } from '../../../src/config/schema.ts';
import { CONFIG_RELATIVE_PATH } from '../../../src/config/load.ts';
import type { ConfigurationGeneratorOptions } from '../schema.d.ts';

export interface EnvironmentSetting {
  name: string;
  connectionStringEnv: string;
}

export interface NormalizedOptions {
  project: string;
  projectRoot: string;
  provider: Provider;
  environments: EnvironmentSetting[];
  /** Whether --environments was given: only then does an existing config gain environments. */
  environmentsGiven: boolean;
  migrateTarget: string;
  createMigrateTarget: boolean;
  migrationTool: MigrationTool;
  /** The config file's migrations.directory, when an existing one sets it. */
  migrationsDirectory?: string | undefined;
  scope: 'project' | 'workspace';
  /** Path of the config file relative to the workspace root. */
  configPath: string;
  force: boolean;
  skipFormat: boolean;
}

const DEFAULT_ENVIRONMENTS = 'dev,staging,production';
/** The original plugin's names, kept so existing .env files keep working. */
const CONNECTION_ENV_OVERRIDES: Readonly<Record<string, string>> = { production: 'PROD_DATABASE_URL' };

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function parseEnvironmentNames(value: string | undefined): string[] {
  const names = [...new Set(splitList(value ?? DEFAULT_ENVIRONMENTS))];
  if (names.length === 0)
    throw new Error('--environments must name at least one environment, e.g. dev,staging,production');
  return names;
}

/** `<ENV>_DATABASE_URL`, production → PROD_DATABASE_URL. */
export function defaultConnectionStringEnv(environment: string): string {
  const override = CONNECTION_ENV_OVERRIDES[environment];
  if (override) return override;
  const stem = environment.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return `${/^[0-9]/.test(stem) ? '_' : ''}${stem}_DATABASE_URL`;
}

/** Parses `production=DATABASE_URL,staging=STAGING_URL`. */
export function parseConnectionStringEnvs(
  value: string | undefined,
  environments: readonly string[],
): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const item of splitList(value ?? '')) {
    const [environment = '', variable = ''] = item.split('=', 2).map((part) => part.trim());
    if (environment === '' || variable === '' || !item.includes('=')) {
      throw new Error(`--connectionStringEnvs expects environment=VARIABLE pairs, got "${item}"`);
    }
    if (!environments.includes(environment)) {
      throw new Error(
        `--connectionStringEnvs names the environment "${environment}", which is not in --environments (${environments.join(', ')})`,
      );
    }
    pairs.set(environment, variable);
  }
  return pairs;
}

/** Where the config file goes, relative to the workspace root. */
export function configPathFor(scope: 'project' | 'workspace', projectRoot: string): string {
  return joinPathFragments(scope === 'workspace' ? '.' : projectRoot, CONFIG_RELATIVE_PATH);
}

/** `migrationTool`: the one given, found in an existing config, detected or asked for (see migration-tool.ts). */
export function normalizeOptions(
  tree: Tree,
  options: ConfigurationGeneratorOptions,
  migrationTool: MigrationTool,
): NormalizedOptions {
  const projectRoot = readProjectConfiguration(tree, options.project).root;
  const names = parseEnvironmentNames(options.environments);
  const explicit = parseConnectionStringEnvs(options.connectionStringEnvs, names);
  const scope = options.scope ?? 'project';
  return {
    project: options.project,
    projectRoot,
    provider: options.provider,
    environments: names.map((name) => ({
      name,
      connectionStringEnv: explicit.get(name) ?? defaultConnectionStringEnv(name),
    })),
    environmentsGiven: options.environments !== undefined,
    migrateTarget: options.migrateTarget?.trim() || 'migrate',
    createMigrateTarget: options.createMigrateTarget ?? false,
    migrationTool,
    scope,
    configPath: configPathFor(scope, projectRoot),
    force: options.force ?? false,
    skipFormat: options.skipFormat ?? false,
  };
}
