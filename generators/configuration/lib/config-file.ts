import { posix } from 'node:path';
import { logger, parseJson, writeJson, type Tree } from '@nx/devkit';
import {
  configSchema,
  DEFAULT_BACKUP_DIRECTORY,
  type FaberConfigInput,
  type MigrationTool,
  type Provider,
} from '../../../src/config/schema.ts';
import { CONFIG_SCHEMA_PATH } from '../../../src/nx/targets.ts';
import type { EnvironmentSetting, NormalizedOptions } from './normalize-options.ts';

type EnvironmentInput = FaberConfigInput['environments'][string];
type MigrationsInput = NonNullable<FaberConfigInput['migrations']>;

const PRODUCTION_LIKE = new Set(['production', 'prod']);
const DEVELOPMENT_LIKE = new Set(['dev', 'development', 'local']);

/** Seed defaults: production and staging get safety backups, production also needs approval. */
export function environmentEntry(setting: EnvironmentSetting): EnvironmentInput {
  const connection_string_env = setting.connectionStringEnv;
  if (PRODUCTION_LIKE.has(setting.name)) {
    return { connection_string_env, backup_before_migrate: true, retention_days: 90, require_approval: true };
  }
  if (setting.name === 'staging') return { connection_string_env, backup_before_migrate: true, retention_days: 60 };
  if (DEVELOPMENT_LIKE.has(setting.name)) return { connection_string_env, backup_before_migrate: false };
  // An environment we know nothing about gets the safe choice: a backup before each migration.
  return { connection_string_env, backup_before_migrate: true };
}

function migrationsFor(tool: MigrationTool, provider: Provider): MigrationsInput {
  switch (tool) {
    case 'prisma':
      return { table: '_prisma_migrations', directory: 'prisma/migrations' };
    case 'knex':
      return { table: 'knex_migrations', directory: 'migrations' };
    case 'drizzle':
      // drizzle-kit keeps its journal in its own schema on PostgreSQL.
      return {
        table: provider === 'postgresql' ? 'drizzle.__drizzle_migrations' : '__drizzle_migrations',
        directory: 'drizzle',
      };
    case 'typeorm':
      return { table: 'migrations' };
    case 'flyway':
      return { table: 'flyway_schema_history', directory: 'sql' };
    case 'none':
      return {};
  }
}

/** `$schema` as a path relative to the config file, so editors find it without a network. */
export function schemaReference(configPath: string): string {
  return posix.relative(posix.dirname(configPath), CONFIG_SCHEMA_PATH);
}

export function buildConfig(options: NormalizedOptions): FaberConfigInput {
  const environments = Object.fromEntries(
    options.environments.map((setting) => [setting.name, environmentEntry(setting)]),
  );
  return {
    $schema: schemaReference(options.configPath),
    schema_version: '1.0',
    database: { provider: options.provider, hosting: 'local', migration_tool: options.migrationTool },
    environments,
    backup: {
      directory: DEFAULT_BACKUP_DIRECTORY,
      // SQLite backups are database files made by the online backup API: no dump format applies.
      ...(options.provider === 'sqlite' ? {} : { format: 'sql' as const }),
      compression: 'zstd',
      retention_days: 30,
      protected_labels: ['manual', 'important'],
      min_keep: 1,
    },
    migrations: {
      ...migrationsFor(options.migrationTool, options.provider),
      ...(options.migrationsDirectory ? { directory: options.migrationsDirectory } : {}),
    },
    safety: {
      protected_environments: options.environments.map((e) => e.name).filter((name) => PRODUCTION_LIKE.has(name)),
    },
  };
}

export function describeIssues(value: unknown): string[] {
  const parsed = configSchema.safeParse(value);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readExistingConfig(tree: Tree, configPath: string): JsonObject {
  let value: unknown;
  try {
    value = parseJson(tree.read(configPath, 'utf-8') ?? '');
  } catch (error) {
    throw new Error(
      `${configPath} is not valid JSON (${error instanceof Error ? error.message : String(error)}). Fix it, or run with --force to replace it.`,
      { cause: error },
    );
  }
  if (!isObject(value))
    throw new Error(`${configPath} must hold a JSON object. Fix it, or run with --force to replace it.`);
  return value;
}

/** Adds the environments the existing config lacks; never changes what is there. */
function mergeMissingEnvironments(existing: JsonObject, fresh: FaberConfigInput): JsonObject {
  const environments = isObject(existing['environments']) ? existing['environments'] : {};
  const missing = Object.entries(fresh.environments).filter(([name]) => !(name in environments));
  if (missing.length === 0) return existing;

  const merged: JsonObject = { ...existing, environments: { ...environments, ...Object.fromEntries(missing) } };
  const safety = existing['safety'];
  const newlyProtected = missing.map(([name]) => name).filter((name) => PRODUCTION_LIKE.has(name));
  if (isObject(safety) && Array.isArray(safety['protected_environments']) && newlyProtected.length > 0) {
    const current: unknown[] = safety['protected_environments'];
    merged['safety'] = {
      ...safety,
      protected_environments: [...current, ...newlyProtected.filter((name) => !current.includes(name))],
    };
  }
  return merged;
}

export function migrationsDirectoryOf(config: JsonObject): string | undefined {
  const migrations = config['migrations'];
  return isObject(migrations) && typeof migrations['directory'] === 'string' ? migrations['directory'] : undefined;
}

export function environmentNames(config: JsonObject): string[] {
  const environments = config['environments'];
  return isObject(environments) ? Object.keys(environments) : [];
}

function addedEnvironments(before: JsonObject, after: JsonObject): string[] {
  const existing = new Set(environmentNames(before));
  return environmentNames(after).filter((name) => !existing.has(name));
}

/**
 * The backup directory when it lies inside the workspace (what .gitignore can cover); an absolute
 * or escaping path is the user's own business.
 */
export function backupDirectoryOf(config: JsonObject): string | undefined {
  const backup = config['backup'];
  const directory =
    isObject(backup) && typeof backup['directory'] === 'string' ? backup['directory'] : DEFAULT_BACKUP_DIRECTORY;
  const normalized = posix.normalize(directory.replaceAll('\\', '/'));
  if (
    posix.isAbsolute(normalized) ||
    /^[A-Za-z]:/.test(normalized) ||
    normalized === '.' ||
    normalized === '..' ||
    normalized.startsWith('../')
  ) {
    return undefined;
  }
  return normalized;
}

function warnAboutDifferences(configPath: string, existing: JsonObject, fresh: FaberConfigInput): void {
  const database = isObject(existing['database']) ? existing['database'] : {};
  if (database['provider'] !== fresh.database.provider) {
    logger.warn(
      `${configPath} already exists with provider "${String(database['provider'])}"; it was left as it is (--force replaces it).`,
    );
  }
}

/**
 * Writes the config file, or completes an existing one with missing environments (unless
 * --force). Returns the config as it now stands in the tree.
 */
export function writeConfigFile(tree: Tree, options: NormalizedOptions): JsonObject {
  const fresh = buildConfig(options);
  const problems = describeIssues(fresh);
  if (problems.length > 0)
    throw new Error(`These options do not make a valid faber-db config:\n  ${problems.join('\n  ')}`);

  if (!tree.exists(options.configPath) || options.force) {
    writeJson(tree, options.configPath, fresh);
    return fresh;
  }
  const existing = readExistingConfig(tree, options.configPath);
  warnAboutDifferences(options.configPath, existing, fresh);
  const merged = options.environmentsGiven ? mergeMissingEnvironments(existing, fresh) : existing;
  if (merged !== existing) {
    writeJson(tree, options.configPath, merged);
    logger.info(`Added environments to ${options.configPath}: ${addedEnvironments(existing, merged).join(', ')}`);
  }
  const issues = describeIssues(merged);
  if (issues.length > 0) logger.warn(`${options.configPath} does not validate:\n  ${issues.join('\n  ')}`);
  return merged;
}
