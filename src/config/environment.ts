import type { Compression, BackupFormat, EncryptionConfig, EnvironmentConfig, FaberConfig } from './schema.ts';
import { DEFAULT_IDENTITY_ENV, DEFAULT_RETENTION_DAYS, FALLBACK_RETENTION_DAYS, SAFETY_REASONS } from './schema.ts';
import { FaberError } from '../output/errors.ts';
import { parseConnectionUrl, type ConnectionInfo } from './connection.ts';
import os from 'node:os';

/**
 * Safety backups (taken before a migration, rollback or restore) are kept at least this long, whatever
 * the retention: they are the way back when a change turns out wrong weeks later.
 */
export const SAFETY_BACKUP_MIN_DAYS = 90;

export interface ResolvedEnvironment {
  name: string;
  settings: EnvironmentConfig;
  isProtected: boolean;
}

export function resolveEnvironment(
  config: FaberConfig,
  name: string | undefined,
  projectName?: string,
): ResolvedEnvironment {
  const known = Object.keys(config.environments);
  const target = projectName
    ? `nx run ${projectName}:backup:${known[0] ?? 'dev'}`
    : `--environment=${known[0] ?? 'dev'}`;
  if (!name) {
    throw new FaberError('ENVIRONMENT_UNKNOWN', `No environment given; the config defines ${known.join(', ')}`, {
      result: { known_environments: known },
      suggestions: [
        `Name one as the Nx configuration (${target}) or with --environment`,
        'A configuration the target does not have is dropped by Nx without a word: each environment of config.json is one configuration of the inferred targets',
      ],
    });
  }
  const settings = config.environments[name];
  if (!settings) {
    throw new FaberError(
      'ENVIRONMENT_UNKNOWN',
      `Unknown environment "${name}"; the config defines ${known.join(', ')}`,
      {
        result: { environment: name, known_environments: known },
        suggestions: [
          `Use one of: ${known.join(', ')}`,
          'Or add the environment to .fractary/plugins/faber-db/config.json',
        ],
      },
    );
  }
  return { name, settings, isProtected: config.safety.protected_environments.includes(name) };
}

/** Reads the connection URL from the variable the environment names (never shown: only its name). */
export function resolveConnection(
  config: FaberConfig,
  environment: ResolvedEnvironment,
  env: NodeJS.ProcessEnv,
  workspaceRoot: string,
  variable = environment.settings.connection_string_env,
): ConnectionInfo {
  const raw = env[variable];
  if (!raw || !raw.trim()) {
    throw new FaberError(
      'CONNECTION_ENV_UNSET',
      `The environment variable ${variable} (connection URL for ${environment.name}) is not set`,
      {
        result: { environment: environment.name, connection_string_env: variable },
        suggestions: [
          `Set it in the shell (export ${variable}=...) or in .env.${environment.name} at the workspace root (Nx loads .env, .env.<configuration> files into tasks)`,
          `Check the name in config.json: environments.${environment.name}.connection_string_env`,
        ],
      },
    );
  }
  return parseConnectionUrl(raw, config.database.provider, workspaceRoot);
}

export function normaliseCompression(value: boolean | Compression | undefined): Compression | undefined {
  if (value === undefined) return undefined;
  if (value === true) return 'zstd';
  if (value === false) return 'none';
  return value;
}

/** pg_dump/pg_restore --jobs for directory backups: `backup.parallel_jobs`, else the cores, from 1 to 8. */
export function effectiveParallelJobs(config: FaberConfig): number {
  return config.backup.parallel_jobs ?? Math.max(1, Math.min(8, os.availableParallelism()));
}

/** Option, then environment, then `backup` section, then zstd. */
export function effectiveCompression(
  config: FaberConfig,
  environment: ResolvedEnvironment,
  option?: boolean | Compression,
): Compression {
  return (
    normaliseCompression(option) ??
    normaliseCompression(environment.settings.compression) ??
    normaliseCompression(config.backup.compression) ??
    'zstd'
  );
}

export function effectiveFormat(
  config: FaberConfig,
  environment: ResolvedEnvironment,
  option?: BackupFormat,
): BackupFormat {
  return option ?? environment.settings.format ?? config.backup.format;
}

/** Option, environment, `backup.retention_days`, per-environment default; safety backups at least 90 days. */
export function effectiveRetentionDays(
  config: FaberConfig,
  environment: ResolvedEnvironment,
  option?: number,
  reason?: string | null,
): number {
  const days =
    option ??
    environment.settings.retention_days ??
    config.backup.retention_days ??
    DEFAULT_RETENTION_DAYS[environment.name] ??
    FALLBACK_RETENTION_DAYS;
  const isSafety = reason !== undefined && reason !== null && (SAFETY_REASONS as readonly string[]).includes(reason);
  return isSafety ? Math.max(days, SAFETY_BACKUP_MIN_DAYS) : days;
}

/** The environment's own setting (false: not encrypted), else `backup.encryption`. */
export function effectiveEncryption(
  config: FaberConfig,
  environment: ResolvedEnvironment,
): EncryptionConfig | undefined {
  const own = environment.settings.encryption;
  if (own === false) return undefined;
  return own ?? config.backup.encryption;
}

/** Every variable the config names for an age private key (and the default one): client tools never inherit them. */
export function identityVariables(config: FaberConfig): string[] {
  const named = Object.values(config.environments).map((settings) =>
    settings.encryption ? settings.encryption.identity_env : undefined,
  );
  return [
    ...new Set(
      [DEFAULT_IDENTITY_ENV, config.backup.encryption?.identity_env, ...named].filter(
        (name): name is string => name !== undefined,
      ),
    ),
  ];
}

/** A copy of `env` without the named variables. */
export function withoutVariables(env: NodeJS.ProcessEnv, names: readonly string[]): NodeJS.ProcessEnv {
  const copy = { ...env };
  for (const name of names) delete copy[name];
  return copy;
}
