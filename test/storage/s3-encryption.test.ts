// Encrypted backups in an S3-compatible bucket (s3rver behind the enforcing proxy, real AWS SDK,
// real databases): written with only the public recipients, then verified and restored from a
// second checkout with an empty local directory; no stored object holds a plaintext marker row
// or the identity.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FaberConfigInput } from '../../src/config/schema.ts';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { listBackups } from '../../src/operations/list.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { verifyBackup } from '../../src/operations/verify.ts';
import { S3Storage } from '../../src/storage/s3.ts';
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
import { startS3Server, type TestS3Server } from '../support/s3-server.ts';
import { s3StorageConfig } from '../support/s3-servers.ts';

const track = tracked();
const FRESH: Record<DatabaseKind, () => Promise<FreshDatabase>> = {
  postgresql: freshPostgres,
  mysql: freshMysql,
  sqlite: freshSqlite,
};
const SUFFIX: Record<DatabaseKind, string> = {
  postgresql: '.sql.zst.age',
  mysql: '.sql.zst.age',
  sqlite: '.sqlite.zst.age',
};
/** A row whose text must not appear in any stored object of an encrypted backup. */
const MARKER = `faber-s3-marker-${randomBytes(6).toString('hex')}`;
let server: TestS3Server;
let identity: string;
let recipient: string;

beforeAll(async () => {
  server = await startS3Server({ enforceConditions: true });
  Object.assign(process.env, server.env);
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
  console.log(`S3 server for these tests: @20minutes/s3rver behind the in-test proxy at ${server.endpoint}`);
});

afterAll(async () => {
  await server.close();
});

function checkout(kind: DatabaseKind, prefix: string, env: Record<string, string>): Promise<TestWorkspace> {
  const config: Partial<FaberConfigInput> & Pick<FaberConfigInput, 'database'> = {
    database: { provider: kind },
    backup: { storage: s3StorageConfig(server, prefix), encryption: { type: 'age', recipients: [recipient] } },
  };
  return makeWorkspace(config, { ...server.env, ...env });
}

async function addMarker(kind: DatabaseKind, url: string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new DatabaseSync(sqlitePath(url));
    db.exec(`CREATE TABLE marker (note TEXT); INSERT INTO marker VALUES ('${MARKER}');`);
    db.close();
    return;
  }
  await adminQuery(
    kind,
    ['CREATE TABLE marker (note TEXT)', `INSERT INTO marker VALUES ('${MARKER}')`],
    decodeURIComponent(new URL(url).pathname.slice(1)),
  );
}

async function localBackups(workspace: TestWorkspace): Promise<string[]> {
  const names = await readdir(workspace.backupRoot, { recursive: true }).catch(() => []);
  return names.filter((name) => /backup-|\.json$/.test(name));
}

describe.each(['postgresql', 'sqlite', 'mysql'] as const)('%s: encrypted backups in a bucket', (kind) => {
  it('backup with only the recipients → list → verify --deep → restore from a second checkout; no object holds the marker or the identity', async () => {
    const prefix = `enc-${kind}-${randomBytes(3).toString('hex')}`;
    const live = await track(FRESH[kind]());
    await seedAwkwardData(kind, live.url);
    await addMarker(kind, live.url);
    const writer = await checkout(kind, prefix, { DEV_DATABASE_URL: live.url });
    const backup = succeeded(await createBackup({ environment: 'dev' }, writer.ctx())) as BackupResultData;
    expect(backup.file_path).toBe(`s3://${server.bucket}/${prefix}/api/dev/${backup.backup_id}${SUFFIX[kind]}`);
    expect(await localBackups(writer)).toEqual([]);

    const target = await track(FRESH[kind]());
    const reader = await checkout(kind, prefix, {
      DEV_DATABASE_URL: live.url,
      COPY_URL: target.url,
      FABER_DB_AGE_IDENTITY: identity,
    });
    expect(JSON.stringify(succeeded(await listBackups({ environment: 'dev' }, reader.ctx())))).toContain(
      backup.backup_id,
    );
    const verified = succeeded(
      await verifyBackup({ environment: 'dev', backupId: backup.backup_id, deep: true }, reader.ctx()),
    );
    expect(verified.backups[0]).toMatchObject({
      backup_id: backup.backup_id,
      passed: true,
      notes: [],
      restore_test: { status: 'passed' },
    });
    expect(verified.backups[0]?.checks).toEqual(
      expect.arrayContaining(['age payload decrypts and authenticates', 'decoded content checksum matches']),
    );
    succeeded(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'COPY_URL' },
        reader.ctx(),
      ),
    );
    const restored = await tableChecksums(kind, target.url);
    expect(restored).toEqual(await tableChecksums(kind, live.url));
    expect(Object.keys(restored).filter((table) => /marker$/.test(table))).toHaveLength(1);
    expect(await localBackups(reader)).toEqual([]);

    // Every object under the prefix, read back through the proxy: the data, its manifest, any index.
    const bucket = new S3Storage(s3StorageConfig(server, prefix), { onWarning: () => undefined });
    const objects = await bucket.list('');
    expect(objects.map((object) => object.key)).toEqual(
      expect.arrayContaining([
        `api/dev/${backup.backup_id}${SUFFIX[kind]}`,
        `api/dev/${backup.backup_id}.manifest.json`,
      ]),
    );
    for (const object of objects) {
      const bytes = (await bucket.read(object.key)) ?? Buffer.alloc(0);
      expect(bytes.includes(MARKER), object.key).toBe(false);
      expect(bytes.includes(identity), object.key).toBe(false);
      expect(object.key).not.toContain(identity);
    }
    const data = await bucket.read(`api/dev/${backup.backup_id}${SUFFIX[kind]}`);
    expect(data?.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
    expect([...writer.output, ...reader.output].join('\n')).not.toContain(identity);
  }, 120_000);
});
