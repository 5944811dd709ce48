// Backups in an S3-compatible bucket (s3rver behind the enforcing proxy, and MinIO through
// Testcontainers when Docker answers; real AWS SDK, real databases): every machine configured
// with the bucket sees, verifies, restores and cleans up the same backups, starting from an
// empty local directory.
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FaberConfigInput } from '../../src/config/schema.ts';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { deleteBackup } from '../../src/operations/delete.ts';
import { listBackups } from '../../src/operations/list.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { verifyBackup } from '../../src/operations/verify.ts';
import { S3Storage } from '../../src/storage/s3.ts';
import { createPasswordUser, freshPostgres, freshSqlite, tracked, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData, tableChecksums } from '../support/fixtures.ts';
import { succeeded } from '../support/results.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { runOperationChild, sha256File } from '../reliability/support.ts';
import { seedBulk } from '../reliability/seed.ts';
import { startS3Server, TEST_SECRET_ACCESS_KEY, type TestS3Server } from '../support/s3-server.ts';
import {
  MINIO,
  S3RVER,
  s3StorageConfig,
  serverTitle,
  startMinio,
  type MinioServer,
  type S3ServerName,
} from '../support/s3-servers.ts';
import { arrayContaining, stringMatching } from '../support/matchers.ts';

const track = tracked();
const choice = inject('faberS3Servers');
/** The server of the suite that is running. */
let server: TestS3Server | MinioServer;

/** The test proxy's fault injection (failing parts, aged uploads): s3rver's suite only. */
function proxy(): TestS3Server {
  if (!('failParts' in server)) throw new Error('fault injection needs the s3rver test proxy');
  return server;
}

async function startServer(name: S3ServerName): Promise<void> {
  server = name === MINIO ? await startMinio() : await startS3Server({ enforceConditions: true });
  // In-process operations find credentials the way production does: the AWS default chain.
  Object.assign(process.env, server.env);
  console.log(`${choice.note}. This suite: ${name} at ${server.endpoint}`);
}

function suiteTitle(name: S3ServerName): string {
  return name === MINIO
    ? `${MINIO} (the fault-injection tests need the s3rver test proxy and run on s3rver)`
    : serverTitle(name, choice);
}

function bucketView(prefix: string): S3Storage {
  return new S3Storage(s3StorageConfig(server, prefix), { onWarning: () => undefined });
}

/** A workspace (a fresh checkout: nothing in its local backup directory) whose backups go to `prefix`. */
function checkout(
  provider: 'postgresql' | 'sqlite',
  prefix: string,
  env: Record<string, string>,
): Promise<TestWorkspace> {
  const config: Partial<FaberConfigInput> & Pick<FaberConfigInput, 'database'> = {
    database: { provider },
    backup: { storage: s3StorageConfig(server, prefix) },
  };
  return makeWorkspace(config, { ...server.env, ...env });
}

/** A backup in a child process (as another CI agent would run it), once its multipart upload is under way. */
async function uploadingBackup(workspaceRoot: string, databaseUrl: string, prefix: string) {
  const child = runOperationChild(
    {
      operation: 'backup',
      workspaceRoot,
      projectName: 'api',
      options: { environment: 'dev', compression: 'none' },
      announceProgress: true,
    },
    { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: databaseUrl, ...server.env },
  );
  await child.progressed(24 * 1024 * 1024);
  await expect
    .poll(async () => (await bucketView(prefix).pendingUploads('api/')).length, { timeout: 30_000 })
    .toBeGreaterThan(0);
  return child;
}

async function localFiles(workspace: TestWorkspace): Promise<string[]> {
  return readdir(workspace.backupRoot, { recursive: true }).catch(() => []);
}

const FRESH: Record<'postgresql' | 'sqlite', () => Promise<FreshDatabase>> = {
  postgresql: freshPostgres,
  sqlite: freshSqlite,
};

describe.each(choice.names.map((name) => ({ name, title: suiteTitle(name) })))('S3 backups on $title', ({ name }) => {
  beforeAll(() => startServer(name));
  afterAll(() => server.close());

  describe.each(['postgresql', 'sqlite'] as const)('%s backups in a bucket', (provider) => {
    it('backup → list → verify --deep → restore, the last three from a second checkout with an empty local directory', async () => {
      const prefix = `e2e-${provider}-${randomBytes(3).toString('hex')}`;
      const live = await track(FRESH[provider]());
      await seedAwkwardData(provider, live.url);
      const writer = await checkout(provider, prefix, { DEV_DATABASE_URL: live.url });
      const backup = succeeded(
        await createBackup({ environment: 'dev', label: 'remote' }, writer.ctx()),
      ) as BackupResultData;
      expect(backup.file_path).toBe(
        `s3://${server.bucket}/${prefix}/api/dev/${backup.backup_id}.${provider === 'sqlite' ? 'sqlite' : 'sql'}.zst`,
      );
      // SQLite snapshots the live file into <backup.directory>/.tmp first (removed afterwards); no backup stays local.
      expect((await localFiles(writer)).filter((name) => /backup-|\.json$/.test(name))).toEqual([]);
      const keys = (await bucketView(prefix).list('')).map((object) => object.key);
      expect(keys).toEqual(
        expect.arrayContaining([
          `api/dev/${backup.backup_id}.manifest.json`,
          backup.file_path.slice(`s3://${server.bucket}/${prefix}/`.length),
        ]),
      );

      const target = await track(FRESH[provider]());
      const reader = await checkout(provider, prefix, { DEV_DATABASE_URL: live.url, COPY_URL: target.url });
      const listed = succeeded(await listBackups({ environment: 'dev' }, reader.ctx()));
      expect(JSON.stringify(listed)).toContain(backup.backup_id);
      const verified = succeeded(
        await verifyBackup({ environment: 'dev', backupId: backup.backup_id, deep: true }, reader.ctx()),
      );
      expect(verified.backups[0]).toMatchObject({ backup_id: backup.backup_id, restore_test: { status: 'passed' } });
      succeeded(
        await restoreBackup(
          { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'COPY_URL' },
          reader.ctx(),
        ),
      );
      expect(await tableChecksums(provider, target.url)).toEqual(await tableChecksums(provider, live.url));
      expect((await localFiles(reader)).filter((name) => /backup-|\.json$/.test(name))).toEqual([]);

      succeeded(await deleteBackup({ environment: 'dev', backupId: backup.backup_id }, reader.ctx()));
      expect((await bucketView(prefix).list('api/')).map((object) => object.key)).toEqual([]);
      expect(JSON.stringify(succeeded(await listBackups({ environment: 'dev' }, writer.ctx())))).not.toContain(
        backup.backup_id,
      );
    }, 120_000);
  });

  describe('keep_local_copy', () => {
    it('writes the same bytes to the bucket and to backup.directory in one pass, with a local manifest', async () => {
      const prefix = `copy-${randomBytes(3).toString('hex')}`;
      const live = await track(freshSqlite());
      await seedAwkwardData('sqlite', live.url);
      const workspace = await makeWorkspace(
        {
          database: { provider: 'sqlite' },
          backup: { storage: { ...s3StorageConfig(server, prefix), keep_local_copy: true } },
        },
        { ...server.env, DEV_DATABASE_URL: live.url },
      );
      const backup = succeeded(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      const name = `${backup.backup_id}.sqlite.zst`;
      expect(backup.file_path).toBe(`s3://${server.bucket}/${prefix}/api/dev/${name}`);
      expect((await localFiles(workspace)).filter((file) => file.startsWith('api')).sort()).toEqual([
        'api',
        'api/dev',
        `api/dev/${backup.backup_id}.manifest.json`,
        `api/dev/${name}`,
      ]);
      expect(await sha256File(path.join(workspace.backupRoot, 'api', 'dev', name))).toBe(backup.checksum.value);
      const remote = await bucketView(prefix).read(`api/dev/${name}`);
      expect(
        createHash('sha256')
          .update(remote ?? Buffer.alloc(0))
          .digest('hex'),
      ).toBe(backup.checksum.value);
    }, 60_000);
  });

  describe('many machines, one bucket', () => {
    it('6 backups from separate processes in the same second: 6 distinct ids, 6 manifests, nothing lost', async () => {
      const prefix = `concurrent-${randomBytes(3).toString('hex')}`;
      const live = await track(freshPostgres());
      await seedAwkwardData('postgresql', live.url);
      const workspaces = await Promise.all(Array.from({ length: 6 }, () => checkout('postgresql', prefix, {})));
      const now = '2026-03-01T08:00:00.000Z';
      const outcomes = await Promise.all(
        workspaces.map(
          (workspace) =>
            runOperationChild(
              {
                operation: 'backup',
                workspaceRoot: workspace.root,
                projectName: 'api',
                options: { environment: 'dev', label: 'ci' },
                now,
              },
              { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: live.url, ...server.env },
            ).done,
        ),
      );
      for (const outcome of outcomes)
        expect(outcome.result, outcome.stdout + outcome.stderr).toMatchObject({ status: 'success' });
      const ids = outcomes
        .map((outcome) => (outcome.result as { result: { backup_id: string } }).result.backup_id)
        .sort();
      expect(ids).toEqual(
        ['backup-20260301-080000-ci', ...[2, 3, 4, 5, 6].map((n) => `backup-20260301-080000-ci-${n}`)].sort(),
      );
      const manifests = (await bucketView(prefix).list('api/dev/')).filter((object) =>
        object.key.endsWith('.manifest.json'),
      );
      expect(manifests).toHaveLength(6);
      const listed = succeeded(await listBackups({ environment: 'dev' }, workspaces[0]!.ctx()));
      for (const id of ids) expect(JSON.stringify(listed)).toContain(id);
    }, 180_000);

    it('cleanup --yes in one checkout while another is uploading leaves the running upload alone', async () => {
      const prefix = `busy-${randomBytes(3).toString('hex')}`;
      const live = await track(freshPostgres());
      await seedBulk(live.url, 40);
      const [backingUp, cleaning] = await Promise.all([
        checkout('postgresql', prefix, { DEV_DATABASE_URL: live.url }),
        checkout('postgresql', prefix, {}),
      ]);
      const child = await uploadingBackup(backingUp.root, live.url, prefix);
      const cleaned = succeeded(await cleanupBackups({ environment: 'dev', yes: true }, cleaning.ctx()));
      expect(cleaned.orphans.filter((orphan) => orphan.action === 'repaired')).toEqual([]);
      const outcome = await child.done;
      expect(outcome.result, outcome.stdout + outcome.stderr).toMatchObject({ status: 'success' });
      const id = (outcome.result as { result: { backup_id: string } }).result.backup_id;
      succeeded(await verifyBackup({ environment: 'dev', backupId: id }, cleaning.ctx()));
    }, 180_000);
  });

  if (name === S3RVER) {
    describe('faults through the test proxy (s3rver only)', () => {
      it('kill -9 during an upload: nothing is listed; the next cleanup --yes aborts the unfinished upload', async () => {
        const prefix = `killed-${randomBytes(3).toString('hex')}`;
        const live = await track(freshPostgres());
        await seedBulk(live.url, 40);
        const workspace = await checkout('postgresql', prefix, { DEV_DATABASE_URL: live.url });
        const child = await uploadingBackup(workspace.root, live.url, prefix);
        child.kill('SIGKILL');
        expect((await child.done).signal).toBe('SIGKILL');

        const listed = succeeded(await listBackups({ environment: 'dev' }, workspace.ctx()));
        expect(JSON.stringify(listed)).not.toMatch(/backup-\d{8}/);
        const bucket = bucketView(prefix);
        expect((await bucket.list('api/')).map((object) => object.key)).toEqual([]);
        const pending = await bucket.pendingUploads('api/');
        expect(pending).toHaveLength(1);

        const recent = succeeded(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx()));
        expect(recent.orphans).toEqual([expect.objectContaining({ kind: 'leftover', action: 'held' })]);
        proxy().ageUploads(60 * 60 * 1000);
        const cleaned = succeeded(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx()));
        expect(cleaned.orphans).toEqual([
          expect.objectContaining({
            kind: 'leftover',
            action: 'repaired',
            path: `s3://${server.bucket}/${prefix}/${pending[0]!.key}`,
          }),
        ]);
        expect(await bucket.pendingUploads('api/')).toEqual([]);
      }, 180_000);

      it('no credentials → STORAGE_AUTH_FAILED; failing parts → STORAGE_UNAVAILABLE; no such bucket → STORAGE_NOT_FOUND; each with suggestions and nothing recorded', async () => {
        const live = await track(freshSqlite());
        await seedAwkwardData('sqlite', live.url);
        const prefix = `errors-${randomBytes(3).toString('hex')}`;
        const workspace = await checkout('sqlite', prefix, { DEV_DATABASE_URL: live.url });
        const noCredentials = await runOperationChild(
          { operation: 'backup', workspaceRoot: workspace.root, projectName: 'api', options: { environment: 'dev' } },
          {
            PATH: process.env.PATH,
            HOME: workspace.root,
            DEV_DATABASE_URL: live.url,
            AWS_EC2_METADATA_DISABLED: 'true',
            AWS_REGION: 'us-east-1',
          },
        ).done;
        expect(noCredentials.result).toMatchObject({
          status: 'error',
          error_code: 'STORAGE_AUTH_FAILED',
          recovery: { suggestions: arrayContaining([stringMatching(/AWS_PROFILE/)]) },
        });

        // A service failing every part (after the SDK's retries): the upload is aborted, nothing is listed.
        const bulk = await track(freshPostgres());
        await seedBulk(bulk.url, 20);
        const failing = await checkout('postgresql', prefix, { DEV_DATABASE_URL: bulk.url });
        proxy().failParts(true);
        const failed = await createBackup({ environment: 'dev', compression: 'none' }, failing.ctx()).finally(() =>
          proxy().failParts(false),
        );
        expect(failed).toMatchObject({
          status: 'error',
          error_code: 'STORAGE_UNAVAILABLE',
          recovery: { suggestions: arrayContaining([stringMatching(/Retry/)]) },
        });
        expect(await bucketView(prefix).pendingUploads('')).toEqual([]);
        expect((await bucketView(prefix).list('api/')).map((object) => object.key)).toEqual([]);

        const wrongBucket = await makeWorkspace(
          {
            database: { provider: 'sqlite' },
            backup: { storage: { ...s3StorageConfig(server, prefix), bucket: 'no-such-bucket' } },
          },
          { ...server.env, DEV_DATABASE_URL: live.url },
        );
        const missing = await createBackup({ environment: 'dev' }, wrongBucket.ctx());
        expect(missing).toMatchObject({
          status: 'error',
          error_code: 'STORAGE_NOT_FOUND',
          recovery: { suggestions: arrayContaining([stringMatching(/bucket/)]) },
        });
        expect(await bucketView(prefix).list('')).toEqual([]);
      }, 60_000);
    });
  }

  describe('secrets', () => {
    it('the AWS secret key and the database password appear in no output, object key or manifest', async () => {
      const prefix = `secrets-${randomBytes(3).toString('hex')}`;
      const user = await createPasswordUser('postgresql');
      await track(Promise.resolve(user));
      await seedAwkwardData('postgresql', user.url);
      const workspace = await checkout('postgresql', prefix, { DEV_DATABASE_URL: user.url });
      const backup = succeeded(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      succeeded(await verifyBackup({ environment: 'dev', backupId: backup.backup_id }, workspace.ctx()));
      const child = await runOperationChild(
        { operation: 'list', workspaceRoot: workspace.root, projectName: 'api', options: { environment: 'dev' } },
        { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: user.url, ...server.env },
      ).done;
      const bucket = bucketView(prefix);
      const objects = await bucket.list('');
      const manifests = await Promise.all(
        objects
          .filter((object) => object.key.endsWith('.manifest.json'))
          .map(async (object) => (await bucket.read(object.key))?.toString() ?? ''),
      );
      expect(manifests).toHaveLength(1);
      const everything = [
        ...workspace.output,
        child.stdout,
        child.stderr,
        ...objects.map((object) => object.key),
        ...manifests,
      ].join('\n');
      expect(everything).toContain(backup.backup_id);
      for (const secret of [TEST_SECRET_ACCESS_KEY, user.password, encodeURIComponent(user.password)])
        expect(everything).not.toContain(secret);
    }, 120_000);
  });
});
