import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_RELATIVE_PATH } from '../../src/config/load.ts';
import type { FaberConfigInput } from '../../src/config/schema.ts';
import type { ErrorCode } from '../../src/output/errors.ts';
import { createPasswordUser, freshSqlite, type FreshDatabase, type PasswordUser } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { runOperation, type OperationName } from './fixtures/operations.ts';
import { expectSoundCatalog, filesUnder } from './support.ts';
import { stringMatching } from '../support/matchers.ts';

/**
 * Malformed configs, options and connection URLs, through the operations people run. Each must
 * fail with its stable error code and a message that names what to fix (the field, option or
 * variable), with suggestions, without a stack trace, and without writing a single file.
 */

const VALID: FaberConfigInput = {
  schema_version: '1.0',
  database: { provider: 'postgresql' },
  environments: {
    dev: { connection_string_env: 'DEV_DATABASE_URL' },
    production: { connection_string_env: 'PROD_DATABASE_URL' },
  },
};
/** Never contacted: every case fails before a connection is made. */
const UNUSED_URL = 'postgres://app:unused-secret@127.0.0.1:5432/app';
const BACKUP_ID = 'backup-20250101-000000';

interface BadInput {
  name: string;
  /** Raw config file text (default: VALID). `null`: no config file at all. */
  config?: string | null;
  /** Extra environment (default: DEV_DATABASE_URL set to an unused valid URL). */
  env?: Record<string, string | undefined>;
  operation?: OperationName;
  options: Record<string, unknown>;
  code: ErrorCode;
  /** What the message must say: the thing to fix. */
  says: RegExp;
  /** What one of the recovery suggestions must say. */
  suggests?: RegExp;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);
const withDatabase = (database: Record<string, unknown>) => json({ ...VALID, database });
const withDev = (dev: Record<string, unknown>) =>
  json({ ...VALID, environments: { dev: { connection_string_env: 'DEV_DATABASE_URL', ...dev } } });
const withBackup = (backup: Record<string, unknown>) => json({ ...VALID, backup });
const dev = { environment: 'dev' };

const CASES: BadInput[] = [
  // The config file.
  { name: 'no config file', config: null, options: dev, code: 'CONFIG_NOT_FOUND', says: /No faber-db config found/ },
  {
    name: 'config is not JSON',
    config: '{ "schema_version": "1.0", database: }',
    options: dev,
    code: 'CONFIG_INVALID',
    says: /not valid JSON/,
  },
  { name: 'config is empty', config: '', options: dev, code: 'CONFIG_INVALID', says: /not valid JSON/ },
  {
    name: 'config has a trailing comma',
    config: json(VALID).replace(/}\s*$/, ',}'),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /not valid JSON/,
  },
  {
    name: 'config starts with a BOM',
    config: `\uFEFF${json(VALID)}`,
    options: dev,
    code: 'CONFIG_INVALID',
    says: /byte-order mark/,
  },
  {
    name: 'duplicate keys',
    config: json(VALID).replace('"schema_version": "1.0",', '"schema_version": "1.0", "schema_version": "1.0",'),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /schema_version.*twice/,
  },
  { name: 'config is an array', config: '[]', options: dev, code: 'CONFIG_INVALID', says: /\(root\)/ },
  {
    name: 'unknown provider',
    config: withDatabase({ provider: 'oracle' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /database\.provider/,
  },
  {
    name: 'provider of the wrong type',
    config: withDatabase({ provider: 42 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /database\.provider/,
  },
  {
    name: 'unsupported hosting',
    config: withDatabase({ provider: 'postgresql', hosting: 'aws-rds' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /aws-rds" is not supported yet/,
  },
  {
    name: 'unknown hosting',
    config: withDatabase({ provider: 'postgresql', hosting: 'heroku' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /database\.hosting/,
  },
  {
    name: 'misspelt top-level field',
    config: json({ ...VALID, retention: 30 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /unknown field "retention"/,
  },
  {
    name: 'wrong schema_version',
    config: json({ ...VALID, schema_version: '2.0' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /schema_version/,
  },
  {
    name: 'environments is a list',
    config: json({ ...VALID, environments: ['dev'] }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /environments/,
  },
  {
    name: 'no environments',
    config: json({ ...VALID, environments: {} }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /at least one environment/,
  },
  {
    name: 'negative retention_days',
    config: withDev({ retention_days: -1 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /environments\.dev\.retention_days/,
  },
  {
    name: 'huge retention_days',
    config: withDev({ retention_days: 1e12 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /environments\.dev\.retention_days/,
  },
  {
    name: 'fractional retention_days',
    config: withBackup({ retention_days: 1.5 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /backup\.retention_days/,
  },
  {
    name: 'retention_days as a string',
    config: withBackup({ retention_days: '30' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /backup\.retention_days/,
  },
  {
    name: 'unknown compression',
    config: withBackup({ compression: 'lz4' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /backup\.compression/,
  },
  {
    name: 'min_keep of 0',
    config: withBackup({ min_keep: 0 }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /backup\.min_keep/,
  },
  {
    name: 'connection_string_env not a variable name',
    config: withDev({ connection_string_env: 'dev-url' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /connection_string_env/,
  },
  {
    name: 'empty backup directory',
    config: withBackup({ directory: '' }),
    options: dev,
    code: 'CONFIG_INVALID',
    says: /backup\.directory/,
  },
  // Environments and connection URLs.
  {
    name: 'unknown environment',
    options: { environment: 'prod' },
    code: 'ENVIRONMENT_UNKNOWN',
    says: /"prod".*dev, production/,
  },
  { name: 'no environment', options: {}, code: 'ENVIRONMENT_UNKNOWN', says: /No environment given/ },
  {
    name: 'connection variable unset',
    env: { DEV_DATABASE_URL: undefined },
    options: dev,
    code: 'CONNECTION_ENV_UNSET',
    says: /DEV_DATABASE_URL/,
  },
  {
    name: 'connection variable blank',
    env: { DEV_DATABASE_URL: '   ' },
    options: dev,
    code: 'CONNECTION_ENV_UNSET',
    says: /DEV_DATABASE_URL/,
  },
  {
    name: 'URL with a bad scheme',
    env: { DEV_DATABASE_URL: 'http://app:pw@db.example/app' },
    options: dev,
    code: 'CONNECTION_URL_INVALID',
    says: /scheme "http:"/,
  },
  {
    name: 'URL of another provider',
    env: { DEV_DATABASE_URL: 'mysql://app:pw@db.example/app' },
    options: dev,
    code: 'CONNECTION_URL_INVALID',
    says: /for mysql but the config says .* postgresql/,
  },
  {
    name: 'URL without a database name',
    env: { DEV_DATABASE_URL: 'postgres://app:pw@db.example:5432' },
    options: dev,
    code: 'CONNECTION_URL_INVALID',
    says: /names no database/,
  },
  {
    name: 'URL that does not parse',
    env: { DEV_DATABASE_URL: 'postgres://app:pw@db.example:99999999/app' },
    options: dev,
    code: 'CONNECTION_URL_INVALID',
    says: /not a valid URL/,
  },
  {
    name: 'in-memory SQLite URL',
    config: withDatabase({ provider: 'sqlite' }),
    env: { DEV_DATABASE_URL: 'sqlite::memory:' },
    options: dev,
    code: 'CONNECTION_URL_INVALID',
    says: /must name a database file/,
  },
  // Backup options.
  { name: 'empty label', options: { ...dev, label: '' }, code: 'INVALID_OPTION', says: /--label/ },
  {
    name: 'label of path characters only',
    options: { ...dev, label: '../../' },
    code: 'INVALID_OPTION',
    says: /label/,
  },
  { name: 'label too long', options: { ...dev, label: 'x'.repeat(300) }, code: 'INVALID_OPTION', says: /--label/ },
  {
    name: 'negative retentionDays',
    options: { ...dev, retentionDays: -5 },
    code: 'INVALID_OPTION',
    says: /--retentionDays/,
  },
  {
    name: 'huge retentionDays',
    options: { ...dev, retentionDays: 1e12 },
    code: 'INVALID_OPTION',
    says: /--retentionDays/,
  },
  {
    name: 'retentionDays as a string',
    options: { ...dev, retentionDays: '30' },
    code: 'INVALID_OPTION',
    says: /--retentionDays/,
  },
  {
    name: 'unknown compression option',
    options: { ...dev, compression: 'lz4' },
    code: 'INVALID_OPTION',
    says: /--compression/,
  },
  { name: 'unknown format option', options: { ...dev, format: 'tar' }, code: 'INVALID_OPTION', says: /--format/ },
  { name: 'tag with a space', options: { ...dev, tags: ['two words'] }, code: 'INVALID_OPTION', says: /--tags/ },
  { name: 'yes as a string', options: { ...dev, yes: 'true' }, code: 'INVALID_OPTION', says: /--yes/ },
  // Ids and options of the other operations.
  {
    name: 'verify: id with a slash',
    operation: 'verify',
    options: { ...dev, backupId: `${BACKUP_ID}/../../etc` },
    code: 'INVALID_OPTION',
    says: /is not a backup id/,
  },
  {
    name: 'restore: id with a slash',
    operation: 'restore',
    options: { ...dev, from: '../backups.json' },
    code: 'INVALID_OPTION',
    says: /is not a backup id/,
  },
  {
    name: 'delete: id with a slash',
    operation: 'delete',
    options: { ...dev, backupId: `${BACKUP_ID}/x`, yes: true },
    code: 'INVALID_OPTION',
    says: /is not a backup id/,
  },
  { name: 'delete: no id', operation: 'delete', options: dev, code: 'INVALID_OPTION', says: /--backupId/ },
  {
    name: 'restore: bad target variable name',
    operation: 'restore',
    options: { ...dev, targetConnectionStringEnv: 'not-a-name' },
    code: 'INVALID_OPTION',
    says: /--targetConnectionStringEnv/,
  },
  {
    name: 'cleanup: negative olderThan',
    operation: 'cleanup',
    options: { ...dev, olderThan: -1 },
    code: 'INVALID_OPTION',
    says: /--olderThan/,
  },
  { name: 'list: limit 0', operation: 'list', options: { ...dev, limit: 0 }, code: 'INVALID_OPTION', says: /--limit/ },
  {
    name: 'list: unknown sort',
    operation: 'list',
    options: { ...dev, sort: 'sideways' },
    code: 'INVALID_OPTION',
    says: /--sort/,
  },
  // Unknown options (typos) are refused before anything happens, never ignored.
  {
    name: 'backup: --lable typo',
    options: { ...dev, lable: 'x' },
    code: 'INVALID_OPTION',
    says: /Unknown option --lable/,
    suggests: /Did you mean `--label`/,
  },
  {
    name: 'restore: --form typo',
    operation: 'restore',
    options: { ...dev, form: BACKUP_ID, yes: true },
    code: 'INVALID_OPTION',
    says: /Unknown option --form/,
    suggests: /Did you mean `--from`/,
  },
  {
    name: 'verify: --backup-id typo',
    operation: 'verify',
    options: { ...dev, backupid: BACKUP_ID },
    code: 'INVALID_OPTION',
    says: /Unknown option --backupid/,
    suggests: /Did you mean `--backupId`/,
  },
  {
    name: 'delete: --force typo',
    operation: 'delete',
    options: { ...dev, backupId: BACKUP_ID, froce: true },
    code: 'INVALID_OPTION',
    says: /Unknown option --froce/,
    suggests: /Did you mean `--force`/,
  },
  {
    name: 'cleanup: --dry-run typo',
    operation: 'cleanup',
    options: { ...dev, dryrun: true },
    code: 'INVALID_OPTION',
    says: /Unknown option --dryrun/,
    suggests: /Did you mean `--dryRun`/,
  },
  {
    name: 'list: positional argument',
    operation: 'list',
    options: { ...dev, _: ['production'] },
    code: 'INVALID_OPTION',
    says: /Unexpected argument "production"/,
  },
];

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

async function prepare(input: BadInput): Promise<TestWorkspace> {
  const workspace = await makeWorkspace(VALID);
  roots.push(workspace.root);
  const configFile = path.join(workspace.root, CONFIG_RELATIVE_PATH);
  if (input.config === null) await rm(configFile);
  else if (input.config !== undefined) await writeFile(configFile, input.config);
  return workspace;
}

function environmentFor(input: BadInput): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, DEV_DATABASE_URL: UNUSED_URL, ...input.env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
}

describe(`${CASES.length} malformed configs, options and URLs`, () => {
  it.each(CASES)('$name → $code', async (input) => {
    const workspace = await prepare(input);
    const configBefore = await readFile(path.join(workspace.root, CONFIG_RELATIVE_PATH), 'utf8').catch(() => null);
    const filesBefore = await filesUnder(workspace.root);
    const result = await runOperation(
      input.operation ?? 'backup',
      input.options,
      workspace.ctx({ env: environmentFor(input) }),
    );

    expect(result.status).toBe('error');
    if (result.status !== 'error') return;
    expect(result.error_code, result.error).toBe(input.code);
    expect(result.error).toMatch(input.says);
    expect(result.recovery.suggestions.length, 'suggestions').toBeGreaterThan(0);
    if (input.suggests) expect(result.recovery.suggestions.join('\n')).toMatch(input.suggests);
    expect(result.stack).toBeUndefined();
    const shown = `${JSON.stringify(result)}\n${workspace.output.join('\n')}`;
    expect(shown).not.toMatch(/\n\s+at |\.ts:\d+:\d+/);
    expect(shown).not.toContain('unused-secret');
    // Nothing written: the workspace holds exactly what it started with.
    expect(await filesUnder(workspace.root)).toEqual(filesBefore);
    expect(await readFile(path.join(workspace.root, CONFIG_RELATIVE_PATH), 'utf8').catch(() => null)).toBe(
      configBefore,
    );
  });
});

describe('awkward input that must work', () => {
  const created: FreshDatabase[] = [];
  let mariadbUser: PasswordUser;
  let postgresUser: PasswordUser;
  let sqlite: FreshDatabase;

  beforeAll(async () => {
    [mariadbUser, postgresUser, sqlite] = await Promise.all([
      createPasswordUser('mysql'),
      createPasswordUser('postgresql'),
      freshSqlite(),
    ]);
    created.push(mariadbUser, postgresUser, sqlite);
    await seedAwkwardData('sqlite', sqlite.url);
  });
  afterAll(async () => {
    for (const db of created) await db.drop();
  });

  it.each(['mysql', 'postgresql'] as const)(
    '%s: a password with @ : / % " \\ # ; (percent-encoded in the URL) backs up, and the password shows nowhere',
    async (provider) => {
      const user = provider === 'mysql' ? mariadbUser : postgresUser;
      expect(user.password).toMatch(/@.*:.*\/.*%/);
      const workspace = await makeWorkspace({ database: { provider } }, { DEV_DATABASE_URL: user.url });
      roots.push(workspace.root);
      const result = await runOperation('backup', dev, workspace.ctx());
      expect(result.status, JSON.stringify(result)).toBe('success');
      expect(await expectSoundCatalog(workspace.root, workspace.backupRoot)).toHaveLength(1);
      expect(`${JSON.stringify(result)}\n${workspace.output.join('\n')}`).not.toContain(user.password);
    },
  );

  it('a label of ../../etc/passwd is slugged: the backup stays inside the backup directory', async () => {
    const workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: sqlite.url });
    roots.push(workspace.root);
    const result = await runOperation('backup', { ...dev, label: '../../etc/passwd' }, workspace.ctx());
    expect(result, JSON.stringify(result)).toMatchObject({
      status: 'success',
      result: { label: 'etc-passwd', backup_id: stringMatching(/^backup-\d{8}-\d{6}-etc-passwd$/) },
    });
    const files = await filesUnder(workspace.root);
    expect(files.filter((name) => !name.startsWith('.fractary/plugins/faber-db'))).toEqual([
      '.fractary',
      '.fractary/plugins',
    ]);
    expect(
      files.some((name) =>
        /^\.fractary\/plugins\/faber-db\/backups\/api\/dev\/backup-\d{8}-\d{6}-etc-passwd\.sqlite\.zst$/.test(name),
      ),
    ).toBe(true);
  });
});
