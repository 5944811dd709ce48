import { execFile } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { promisify } from 'node:util';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { recipientFingerprint } from '../../src/config/age-recipients.ts';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { listBackups } from '../../src/operations/list.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { verifyBackup } from '../../src/operations/verify.ts';
import type { OperationResult } from '../../src/output/result.ts';
import {
  adminQuery,
  freshMysql,
  freshPostgres,
  freshSqlite,
  tracked,
  type FreshDatabase,
} from '../support/databases.ts';
import { seedAwkwardData, sqlitePath, tableChecksums, type DatabaseKind } from '../support/fixtures.ts';
import { succeeded } from '../support/results.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';

const run = promisify(execFile);
const track = tracked();
const ok = succeeded;
const FRESH: Record<DatabaseKind, () => Promise<FreshDatabase>> = {
  postgresql: freshPostgres,
  mysql: freshMysql,
  sqlite: freshSqlite,
};
/** A row whose text must not appear in any stored file of an encrypted backup. */
const MARKER = 'faber-marker-4c1d9e7a-plaintext-canary';

interface KeyPair {
  identity: string;
  recipient: string;
}

async function keyPair(): Promise<KeyPair> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

let team: KeyPair;
let breakGlass: KeyPair;
let stranger: KeyPair;

beforeAll(async () => {
  [team, breakGlass, stranger] = await Promise.all([keyPair(), keyPair(), keyPair()]);
});

async function addMarker(kind: DatabaseKind, url: string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new DatabaseSync(sqlitePath(url));
    db.exec(`CREATE TABLE marker (note TEXT); INSERT INTO marker VALUES ('${MARKER}');`);
    db.close();
    return;
  }
  const database = decodeURIComponent(new URL(url).pathname.slice(1));
  await adminQuery(kind, ['CREATE TABLE marker (note TEXT)', `INSERT INTO marker VALUES ('${MARKER}')`], database);
}

async function deleteMarker(kind: DatabaseKind, url: string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new DatabaseSync(sqlitePath(url));
    db.exec('DELETE FROM marker');
    db.close();
    return;
  }
  await adminQuery(kind, ['DELETE FROM marker'], decodeURIComponent(new URL(url).pathname.slice(1)));
}

/** Every file under a directory, recursively. */
async function storedFiles(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

interface Setup {
  db: FreshDatabase;
  workspace: TestWorkspace;
  backup: BackupResultData;
  original: Record<string, string>;
  file: string;
}

async function encryptedBackup(
  kind: DatabaseKind,
  options: { format?: 'sql' | 'custom'; compression?: 'zstd' | 'none'; identity?: string } = {},
): Promise<Setup> {
  const db = await track(FRESH[kind]());
  await seedAwkwardData(kind, db.url);
  await addMarker(kind, db.url);
  const env: Record<string, string> = {
    DEV_DATABASE_URL: db.url,
    ...(options.identity ? { FABER_DB_AGE_IDENTITY: options.identity } : {}),
  };
  const workspace = await makeWorkspace(
    {
      database: { provider: kind, migration_tool: 'prisma' },
      backup: {
        ...(options.format ? { format: options.format } : {}),
        ...(options.compression ? { compression: options.compression } : {}),
        encryption: { type: 'age', recipients: [team.recipient, breakGlass.recipient] },
      },
    },
    env,
  );
  // The backup itself runs without any private key.
  const backup = ok(
    await createBackup(
      { environment: 'dev', yes: true },
      workspace.ctx({ env: { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: db.url } }),
    ),
  ) as BackupResultData;
  return {
    db,
    workspace,
    backup,
    original: await tableChecksums(kind, db.url),
    file: path.join(workspace.root, backup.file_path),
  };
}

function withIdentity(workspace: TestWorkspace, db: FreshDatabase, identity: string | undefined) {
  return workspace.ctx({
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DEV_DATABASE_URL: db.url,
      ...(identity === undefined ? {} : { FABER_DB_AGE_IDENTITY: identity }),
    },
  });
}

function failed<T>(result: OperationResult<T>, code: string): Record<string, unknown> {
  expect(result).toMatchObject({ status: 'error', error_code: code });
  if (result.status !== 'error') throw new Error('expected an error');
  expect(result.recovery.suggestions.length).toBeGreaterThan(0);
  return result.result;
}

const ROUND_TRIPS: Array<[string, DatabaseKind, { format?: 'sql' | 'custom' }, string]> = [
  ['PostgreSQL plain SQL', 'postgresql', { format: 'sql' }, '.sql.zst.age'],
  ['PostgreSQL custom format', 'postgresql', { format: 'custom' }, '.dump.zst.age'],
  ['MariaDB', 'mysql', {}, '.sql.zst.age'],
  ['SQLite', 'sqlite', {}, '.sqlite.zst.age'],
];

describe('encrypted backups: backup → verify → restore', () => {
  it.each(ROUND_TRIPS)(
    '%s: needs only the recipients to back up, the identity to read back',
    async (_name, kind, options, suffix) => {
      const { db, workspace, backup, original, file } = await encryptedBackup(kind, options);
      expect(backup.file_path.endsWith(suffix)).toBe(true);
      expect((await readFile(file)).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
      const entry = (await workspace.catalog.find(backup.backup_id)) as BackupEntry;
      expect(entry.encryption).toEqual({
        type: 'age',
        recipients: [recipientFingerprint(team.recipient), recipientFingerprint(breakGlass.recipient)],
        identity_env: 'FABER_DB_AGE_IDENTITY',
      });
      expect(entry.verification.checks).toEqual(
        expect.arrayContaining(['file checksum (sha256) matches', 'age header well-formed (2 X25519 recipients)']),
      );
      // The plaintext was decoded and compared as it was written, before encryption.
      expect(
        entry.verification.checks?.some((check) => check.startsWith("zstd stream decodes to the dump's bytes")),
      ).toBe(true);
      const { stdout } = await run('sha256sum', [file]);
      expect(stdout.split(' ')[0]).toBe(entry.checksum.value);

      // Without the identity: bytes and header checked, and it says the content was not decoded.
      const blind = ok(
        await verifyBackup({ environment: 'dev', backupId: backup.backup_id }, withIdentity(workspace, db, undefined)),
      );
      expect(blind.backups[0]).toMatchObject({
        passed: true,
        notes: [expect.stringContaining('not decoded: $FABER_DB_AGE_IDENTITY is not set')],
      });
      expect(blind.backups[0]?.checks).not.toContain('age payload decrypts and authenticates');

      // With either recipient's identity: decrypted and decoded fully, and a restore drill passes.
      const full = ok(
        await verifyBackup(
          { environment: 'dev', backupId: backup.backup_id, deep: true },
          withIdentity(workspace, db, breakGlass.identity),
        ),
      );
      expect(full.backups[0]).toMatchObject({ passed: true, notes: [], restore_test: { status: 'passed' } });
      expect(full.backups[0]?.checks).toEqual(
        expect.arrayContaining(['age payload decrypts and authenticates', 'decoded content checksum matches']),
      );

      await deleteMarker(kind, db.url);
      expect(await tableChecksums(kind, db.url)).not.toEqual(original);
      ok(
        await restoreBackup(
          { environment: 'dev', from: backup.backup_id, yes: true },
          withIdentity(workspace, db, team.identity),
        ),
      );
      expect(await tableChecksums(kind, db.url)).toEqual(original);

      // No stored file (backups, their manifests, the catalog, the safety backup) holds the marker or a private key.
      for (const stored of await storedFiles(workspace.backupRoot)) {
        const bytes = await readFile(stored);
        expect(bytes.includes(MARKER), stored).toBe(false);
        expect(bytes.includes(team.identity) || bytes.includes(breakGlass.identity), stored).toBe(false);
      }
      expect(workspace.output.join('\n')).not.toContain(team.identity);
      expect(workspace.output.join('\n')).not.toContain(breakGlass.identity);
    },
  );

  it('the marker check can fail: an unencrypted, uncompressed backup does hold the marker, the encrypted one does not', async () => {
    const { db, file } = await encryptedBackup('sqlite', { compression: 'none' });
    expect(file.endsWith('.sqlite.age')).toBe(true);
    expect((await readFile(file)).includes(MARKER)).toBe(false);
    const unencrypted = await makeWorkspace(
      { database: { provider: 'sqlite' }, backup: { compression: 'none' } },
      { DEV_DATABASE_URL: db.url },
    );
    const plain = ok(await createBackup({ environment: 'dev' }, unencrypted.ctx())) as BackupResultData;
    expect(plain.file_path.endsWith('.sqlite')).toBe(true);
    expect((await readFile(path.join(unencrypted.root, plain.file_path))).includes(MARKER)).toBe(true);
  });
});

describe('encrypted backups: the standard tools read them without the plugin', () => {
  it('age -d -i key.txt <file>.sql.zst.age | zstd -d | psql restores the dump (key made by age-keygen)', async () => {
    const keyFile = path.join((await makeWorkspace({ database: { provider: 'sqlite' } })).root, 'key.txt');
    await run('age-keygen', ['-o', keyFile]);
    const recipient = (await run('age-keygen', ['-y', keyFile])).stdout.trim();
    const db = await track(freshPostgres());
    await seedAwkwardData('postgresql', db.url);
    await addMarker('postgresql', db.url);
    const workspace = await makeWorkspace(
      {
        database: { provider: 'postgresql', migration_tool: 'prisma' },
        backup: { encryption: { type: 'age', recipients: [recipient] } },
      },
      { DEV_DATABASE_URL: db.url },
    );
    const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
    const target = await track(freshPostgres());
    const file = path.join(workspace.root, backup.file_path);
    await run(
      'bash',
      ['-o', 'pipefail', '-c', 'age -d -i "$KEY" "$FILE" | zstd -d | psql -q -v ON_ERROR_STOP=1 "$TARGET" >/dev/null'],
      {
        env: { PATH: process.env.PATH, KEY: keyFile, FILE: file, TARGET: target.url },
      },
    );
    expect(await tableChecksums('postgresql', target.url)).toEqual(await tableChecksums('postgresql', db.url));
    // And the plugin reads the key file's whole content (comments included) as the identity.
    const keyText = await readFile(keyFile, 'utf8');
    const verified = ok(
      await verifyBackup(
        { environment: 'dev' },
        workspace.ctx({ env: { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, FABER_DB_AGE_IDENTITY: keyText } }),
      ),
    );
    expect(verified.backups[0]?.checks).toContain('age payload decrypts and authenticates');
  });
});

describe('encrypted backups: bad input', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await encryptedBackup('postgresql');
  });

  it('restore without the identity is ENCRYPTION_KEY_MISSING, and the database is not touched', async () => {
    const { db, workspace, backup } = setup;
    await deleteMarker('postgresql', db.url);
    const before = await tableChecksums('postgresql', db.url);
    const entries = (await workspace.catalog.read()).entries.length;
    const result = failed(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, yes: true },
        withIdentity(workspace, db, undefined),
      ),
      'ENCRYPTION_KEY_MISSING',
    );
    expect(result).toMatchObject({ backup_id: backup.backup_id, identity_env: 'FABER_DB_AGE_IDENTITY' });
    expect(await tableChecksums('postgresql', db.url)).toEqual(before);
    // No safety backup was taken either.
    expect((await workspace.catalog.read()).entries.length).toBe(entries);
  });

  it('verify --deep without the identity is ENCRYPTION_KEY_MISSING', async () => {
    const { db, workspace, backup } = setup;
    failed(
      await verifyBackup(
        { environment: 'dev', backupId: backup.backup_id, deep: true },
        withIdentity(workspace, db, undefined),
      ),
      'ENCRYPTION_KEY_MISSING',
    );
  });

  it('an identity that matches none of the recipients is ENCRYPTION_KEY_WRONG for restore and --deep; a file check says it could not decode', async () => {
    const { db, workspace, backup } = setup;
    const result = failed(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, yes: true },
        withIdentity(workspace, db, stranger.identity),
      ),
      'ENCRYPTION_KEY_WRONG',
    );
    expect(result.identity_recipients).toEqual([recipientFingerprint(stranger.recipient)]);
    failed(
      await verifyBackup(
        { environment: 'dev', backupId: backup.backup_id, deep: true },
        withIdentity(workspace, db, stranger.identity),
      ),
      'ENCRYPTION_KEY_WRONG',
    );
    // After a key rotation, old backups are for the old key: a file check of them still passes, and says why it did not decode.
    const checked = ok(
      await verifyBackup(
        { environment: 'dev', backupId: backup.backup_id },
        withIdentity(workspace, db, stranger.identity),
      ),
    );
    expect(checked.backups[0]).toMatchObject({
      passed: true,
      notes: [expect.stringContaining(`belongs to age:${recipientFingerprint(stranger.recipient)}`)],
    });
  });

  it.each([
    ['a public key', () => team.recipient, 'a public key'],
    ['a malformed age identity', () => `${team.identity.slice(0, -3)}QQQ`, 'malformed'],
    [
      'an SSH key',
      () => '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----',
      'an SSH key',
    ],
  ])(
    'an identity of the wrong type (%s) is ENCRYPTION_KEY_WRONG and the value is not echoed',
    async (_name, identity, says) => {
      const { db, workspace, backup } = setup;
      const value = identity();
      const result = await restoreBackup(
        { environment: 'dev', from: backup.backup_id, yes: true },
        withIdentity(workspace, db, value),
      );
      failed(result, 'ENCRYPTION_KEY_WRONG');
      expect(JSON.stringify(result)).toContain(says);
      expect(JSON.stringify(result)).not.toContain(value.split('\n')[0]);
    },
  );

  it('a tampered file fails verification with and without the identity, and is not restored', async () => {
    const { db, workspace } = await encryptedBackup('sqlite');
    const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
    const file = path.join(workspace.root, backup.file_path);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0x40;
    await writeFile(file, bytes);
    const blind = await verifyBackup(
      { environment: 'dev', backupId: backup.backup_id },
      withIdentity(workspace, db, undefined),
    );
    expect(JSON.stringify(failed(blind, 'VERIFICATION_FAILED'))).toContain('file checksum (sha256) mismatch');
    const keyed = await verifyBackup(
      { environment: 'dev', backupId: backup.backup_id },
      withIdentity(workspace, db, team.identity),
    );
    expect(JSON.stringify(failed(keyed, 'VERIFICATION_FAILED'))).toContain('age authentication failed');
    failed(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, yes: true },
        withIdentity(workspace, db, team.identity),
      ),
      'VERIFICATION_FAILED',
    );
  });

  it.each([
    [
      'a recipient with a typo (bad checksum)',
      () => `${team.recipient.slice(0, -1)}${team.recipient.endsWith('q') ? 'p' : 'q'}`,
      'valid checksum',
    ],
    ['a cut-short recipient', () => team.recipient.slice(0, 40), 'age X25519 recipient'],
    ['a private key in recipients', () => team.identity, 'must never be in the config'],
  ])('config: %s is CONFIG_INVALID and names the field, never the key', async (_name, recipient, says) => {
    const db = await track(freshSqlite());
    const value = recipient();
    const workspace = await makeWorkspace(
      { database: { provider: 'sqlite' }, backup: { encryption: { type: 'age', recipients: [value] } } },
      { DEV_DATABASE_URL: db.url },
    );
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    failed(result, 'CONFIG_INVALID');
    expect(JSON.stringify(result)).toContain('backup.encryption.recipients');
    expect(JSON.stringify(result)).toContain(says);
    if (value === team.identity) expect(JSON.stringify(result)).not.toContain(value);
  });

  it('the directory format cannot be encrypted: INVALID_OPTION before anything is written', async () => {
    const { db, workspace } = setup;
    const result = await createBackup(
      { environment: 'dev', format: 'directory' },
      withIdentity(workspace, db, undefined),
    );
    failed(result, 'INVALID_OPTION');
  });
});

describe('encrypted backups: the private key stays in this process', () => {
  it('client tools (pg_restore for the check, the drill and the restore) never inherit the age key variable', async () => {
    const { db, workspace, backup } = await encryptedBackup('postgresql', { format: 'custom' });
    // A pg_restore that writes down its environment, then runs the real one.
    const bin = path.join(workspace.root, 'bin');
    const log = path.join(workspace.root, 'tool-environments.log');
    const real = (await run('sh', ['-c', 'command -v pg_restore'])).stdout.trim();
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'pg_restore'),
      `#!/bin/sh\nenv >> "$TOOL_ENV_LOG"\necho ---- >> "$TOOL_ENV_LOG"\nexec ${JSON.stringify(real)} "$@"\n`,
    );
    await chmod(path.join(bin, 'pg_restore'), 0o755);
    const env = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: process.env.HOME,
      DEV_DATABASE_URL: db.url,
      FABER_DB_AGE_IDENTITY: team.identity,
      TOOL_ENV_LOG: log,
    };
    ok(await verifyBackup({ environment: 'dev', backupId: backup.backup_id, deep: true }, workspace.ctx({ env })));
    ok(await restoreBackup({ environment: 'dev', from: backup.backup_id, yes: true }, workspace.ctx({ env })));
    const seen = await readFile(log, 'utf8');
    expect(seen.split('----').length).toBeGreaterThan(3);
    expect(seen).toContain('TOOL_ENV_LOG=');
    expect(seen).not.toContain('FABER_DB_AGE_IDENTITY');
    expect(seen).not.toContain(team.identity);
  });
});

describe('encrypted backups: mixed catalogs and per-environment settings', () => {
  it('an encrypted file the catalog lost (.sqlite.zst.age) is found as an orphan and put back, checked without the key', async () => {
    const { db, workspace, backup, file } = await encryptedBackup('sqlite');
    const catalogFile = path.join(workspace.backupRoot, 'backups.json');
    const catalog = JSON.parse(await readFile(catalogFile, 'utf8')) as { backups: BackupEntry[] };
    await writeFile(
      catalogFile,
      JSON.stringify({ ...catalog, backups: catalog.backups.filter((entry) => entry.backup_id !== backup.backup_id) }),
    );
    const dayAgo = new Date(Date.now() - 24 * 3600 * 1000);
    for (const old of [file, file.replace(/\.sqlite\.zst\.age$/, '.manifest.json')]) await utimes(old, dayAgo, dayAgo);
    const repaired = ok(
      await cleanupBackups({ environment: 'dev', yes: true }, withIdentity(workspace, db, undefined)),
    );
    expect(repaired.orphans).toEqual([
      expect.objectContaining({ kind: 'file-with-manifest', backup_id: backup.backup_id, action: 'repaired' }),
    ]);
    expect(await workspace.catalog.find(backup.backup_id)).toMatchObject({
      status: 'valid',
      encryption: { type: 'age' },
    });
  });

  it('list-backups shows which backups are encrypted and for whom (fingerprints, not keys)', async () => {
    const db = await track(freshSqlite());
    await seedAwkwardData('sqlite', db.url);
    const workspace = await makeWorkspace(
      {
        database: { provider: 'sqlite' },
        environments: {
          dev: { connection_string_env: 'DEV_DATABASE_URL', encryption: false },
          production: {
            connection_string_env: 'DEV_DATABASE_URL',
            encryption: { type: 'age', recipients: [team.recipient], identity_env: 'PROD_AGE_KEY' },
          },
        },
        backup: { encryption: { type: 'age', recipients: [breakGlass.recipient] } },
      },
      { DEV_DATABASE_URL: db.url },
    );
    const plain = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
    const secret = ok(
      await createBackup({ environment: 'production', yes: true }, workspace.ctx()),
    ) as BackupResultData;
    expect(plain.file_path.endsWith('.sqlite.zst')).toBe(true);
    expect(secret.file_path.endsWith('.sqlite.zst.age')).toBe(true);
    expect((await stat(path.join(workspace.root, secret.file_path))).mode & 0o777).toBe(0o600);

    workspace.output.length = 0;
    const listed = ok(await listBackups({}, workspace.ctx()));
    const byId = Object.fromEntries(listed.backups.map((backup) => [backup.backup_id, backup]));
    expect(byId[plain.backup_id]).toMatchObject({ encrypted: false });
    expect(byId[plain.backup_id]?.encryption).toBeUndefined();
    expect(byId[secret.backup_id]).toMatchObject({
      encrypted: true,
      encryption: { recipients: [recipientFingerprint(team.recipient)], identity_env: 'PROD_AGE_KEY' },
    });
    const table = workspace.output.join('\n');
    expect(table).toContain('ENCRYPTED FOR');
    expect(table).toContain(`age:${recipientFingerprint(team.recipient)}`);
    expect(table).not.toContain(team.recipient);
    expect(JSON.stringify(listed)).not.toContain(team.recipient);
  });
});
