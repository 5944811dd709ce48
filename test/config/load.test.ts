import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONFIG_RELATIVE_PATH, loadConfig, parseConfig } from '../../src/config/load.ts';
import {
  effectiveCompression,
  effectiveRetentionDays,
  resolveConnection,
  resolveEnvironment,
} from '../../src/config/environment.ts';
import { parseConnectionUrl } from '../../src/config/connection.ts';
import { tempDirectory } from '../support/temp.ts';

const minimal = {
  schema_version: '1.0',
  database: { provider: 'postgresql' },
  environments: { dev: { connection_string_env: 'DEV_DATABASE_URL' } },
};

function errorOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected an error');
}

describe('config file', () => {
  it('accepts a complete example config and fills defaults', () => {
    const config = parseConfig(
      JSON.stringify({
        schema_version: '1.0',
        database: { provider: 'postgresql', hosting: 'local', migration_tool: 'prisma' },
        environments: {
          dev: { connection_string_env: 'DEV_DATABASE_URL', backup_before_migrate: false },
          production: {
            connection_string_env: 'PROD_DATABASE_URL',
            backup_before_migrate: true,
            retention_days: 90,
            require_approval: true,
          },
        },
        backup: {
          directory: '.fractary/plugins/faber-db/backups',
          format: 'sql',
          compression: true,
          retention_days: 30,
          protected_labels: ['manual'],
          min_keep: 1,
        },
        migrations: { table: '_prisma_migrations', directory: 'prisma/migrations' },
        safety: { protected_environments: ['production'] },
      }),
      '/w/config.json',
    );
    expect(config.backup.confirm_above_bytes).toBe(10 * 1024 ** 3);
    expect(config.environments.production?.require_approval).toBe(true);
  });

  it.each([
    ['unknown provider', { ...minimal, database: { provider: 'oracle' } }, 'database.provider'],
    [
      'hosting not implemented',
      { ...minimal, database: { provider: 'postgresql', hosting: 'aws-rds' } },
      'not supported yet',
    ],
    ['unknown field', { ...minimal, extra: 1 }, 'unknown field "extra"'],
    [
      'misspelt field',
      { ...minimal, environments: { dev: { conection_string_env: 'DEV_DATABASE_URL' } } },
      'environments.dev: unknown field "conection_string_env" (did you mean "connection_string_env"?)',
    ],
    ['negative retention', { ...minimal, backup: { retention_days: -1 } }, 'backup.retention_days'],
    [
      'bad env var name',
      { ...minimal, environments: { dev: { connection_string_env: 'has space' } } },
      'environments.dev.connection_string_env',
    ],
    ['no environments', { ...minimal, environments: {} }, 'at least one environment'],
    ['wrong schema version', { ...minimal, schema_version: '2.0' }, 'schema_version'],
  ])('%s → CONFIG_INVALID naming the path', (_name, config, fragment) => {
    const error = errorOf(() => parseConfig(JSON.stringify(config), '/w/.fractary/plugins/faber-db/config.json'));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('config.json');
    expect(error.message).toContain(fragment);
  });

  it('names the line and column of a JSON syntax error (a trailing comma)', () => {
    const text = '{\n  "schema_version": "1.0",\n  "database": { "provider": "sqlite" },\n}\n';
    const error = errorOf(() => parseConfig(text, '/w/c.json')) as {
      code: string;
      message: string;
      result: Record<string, unknown>;
    };

    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(/c\.json:3:39: not valid JSON: a trailing comma before "}"$/);
    expect(error.result).toMatchObject({ config_file: '/w/c.json', line: 3, column: 39 });
  });

  it('rejects non-JSON, a BOM and duplicate keys', () => {
    expect(errorOf(() => parseConfig('{ "schema_version": ', '/w/c.json')).message).toMatch(/not valid JSON/);
    expect(errorOf(() => parseConfig(`\uFEFF${JSON.stringify(minimal)}`, '/w/c.json')).message).toMatch(
      /byte-order mark/,
    );
    const doubled =
      '{"schema_version":"1.0","database":{"provider":"sqlite"},"environments":{"dev":{"connection_string_env":"A","connection_string_env":"B"}}}';
    expect(errorOf(() => parseConfig(doubled, '/w/c.json')).message).toContain(
      'environments.dev.connection_string_env is defined twice',
    );
  });

  it('prefers the project config over the workspace config', async () => {
    const root = await tempDirectory('faber-config-');
    const write = async (dir: string, provider: string) => {
      await mkdir(path.join(root, dir, path.dirname(CONFIG_RELATIVE_PATH)), { recursive: true });
      await writeFile(
        path.join(root, dir, CONFIG_RELATIVE_PATH),
        JSON.stringify({ ...minimal, database: { provider } }),
      );
    };
    await write('.', 'mysql');
    await write('apps/api', 'sqlite');
    expect((await loadConfig(root, 'apps/api')).config.database.provider).toBe('sqlite');
    expect((await loadConfig(root, 'apps/web')).config.database.provider).toBe('mysql');
    await expect(loadConfig(path.join(root, 'apps'), 'x')).rejects.toMatchObject({ code: 'CONFIG_NOT_FOUND' });
  });
});

describe('environments', () => {
  const config = parseConfig(
    JSON.stringify({
      ...minimal,
      environments: {
        dev: { connection_string_env: 'DEV_URL' },
        production: { connection_string_env: 'PROD_URL', retention_days: 120 },
      },
    }),
    '/w/c.json',
  );

  it('unknown environment lists the known ones', () => {
    const error = errorOf(() => resolveEnvironment(config, 'prod'));
    expect(error.code).toBe('ENVIRONMENT_UNKNOWN');
    expect(error.message).toContain('dev, production');
  });

  it('unset variable is named, its value never shown', () => {
    const env = resolveEnvironment(config, 'dev');
    const error = errorOf(() => resolveConnection(config, env, {}, '/w'));
    expect(error.code).toBe('CONNECTION_ENV_UNSET');
    expect(error.message).toContain('DEV_URL');
  });

  it('retention: option, environment, then per-environment defaults; safety backups ≥ 90 days', () => {
    const dev = resolveEnvironment(config, 'dev');
    expect(effectiveRetentionDays(config, dev)).toBe(30);
    expect(effectiveRetentionDays(config, dev, 7)).toBe(7);
    expect(effectiveRetentionDays(config, dev, 7, 'pre-migration')).toBe(90);
    expect(effectiveRetentionDays(config, resolveEnvironment(config, 'production'))).toBe(120);
  });

  it('compression: true is zstd, default zstd', () => {
    const dev = resolveEnvironment(config, 'dev');
    expect(effectiveCompression(config, dev)).toBe('zstd');
    expect(effectiveCompression(config, dev, true)).toBe('zstd');
    expect(effectiveCompression(config, dev, false)).toBe('none');
    expect(effectiveCompression(config, dev, 'gzip')).toBe('gzip');
  });
});

describe('connection URLs', () => {
  it('parses credentials with special characters and redacts them', () => {
    const info = parseConnectionUrl(
      'postgres://app:p%40ss%3Aw%2Frd%25@db.internal:6543/app_prod?sslmode=require',
      'postgresql',
      '/w',
    );
    expect(info).toMatchObject({
      host: 'db.internal',
      port: 6543,
      user: 'app',
      password: 'p@ss:w/rd%',
      database: 'app_prod',
      params: { sslmode: 'require' },
    });
    expect(info.redacted).toBe('postgres://app:***@db.internal:6543/app_prod?sslmode=require');
  });
  it('understands sockets and SQLite paths', () => {
    expect(parseConnectionUrl('postgresql://postgres@/app?host=/var/run/postgresql', 'postgresql', '/w').socket).toBe(
      '/var/run/postgresql',
    );
    expect(parseConnectionUrl('sqlite:data/app.db', 'sqlite', '/w').filePath).toBe('/w/data/app.db');
    expect(parseConnectionUrl('file:///abs/app.db', 'sqlite', '/w').filePath).toBe('/abs/app.db');
    expect(parseConnectionUrl('mariadb://root@127.0.0.1/shop', 'mysql', '/w').database).toBe('shop');
  });
  it.each([
    ['http://x/db', 'postgresql'],
    ['postgres://user:pw@host', 'postgresql'],
    ['mysql://u@h/db', 'postgresql'],
    ['sqlite:', 'sqlite'],
  ] as const)('%s → CONNECTION_URL_INVALID without the password', (url, provider) => {
    const error = errorOf(() => parseConnectionUrl(url, provider, '/w'));
    expect(error.code).toBe('CONNECTION_URL_INVALID');
    expect(error.message).not.toContain(':pw@');
  });
});
