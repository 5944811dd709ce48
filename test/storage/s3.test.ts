import { randomBytes } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { S3StorageConfig } from '../../src/config/schema.ts';
import { S3Storage } from '../../src/storage/s3.ts';
import { describeStorageContract } from './contract.ts';
import { startS3Server, type TestS3Server } from '../support/s3-server.ts';
import { MINIO, S3RVER, serverTitle, startMinio, type MinioServer } from '../support/s3-servers.ts';
import { arrayContaining, stringMatching } from '../support/matchers.ts';

const servers: Record<'enforcing' | 'ignoring', TestS3Server | undefined> = {
  enforcing: undefined,
  ignoring: undefined,
};
const warnings: string[] = [];
const choice = inject('faberS3Servers');
const minioRuns = choice.names.includes(MINIO);
let minio: MinioServer | undefined;

beforeAll(async () => {
  console.log(choice.note);
  servers.enforcing = await startS3Server({ enforceConditions: true });
  servers.ignoring = await startS3Server({ enforceConditions: false });
  if (minioRuns) minio = await startMinio();
  // The storage finds credentials through the AWS default chain, as in production.
  Object.assign(process.env, servers.enforcing.env);
});

afterAll(async () => {
  await servers.enforcing?.close();
  await servers.ignoring?.close();
  await minio?.close();
});

function configFor(
  server: Pick<TestS3Server, 'bucket' | 'endpoint'>,
  overrides: Partial<S3StorageConfig> = {},
): S3StorageConfig {
  return {
    type: 's3',
    bucket: server.bucket,
    prefix: `t-${randomBytes(4).toString('hex')}`,
    endpoint: server.endpoint,
    force_path_style: true,
    ...overrides,
  };
}

function storageOn(kind: 'enforcing' | 'ignoring', overrides: Partial<S3StorageConfig> = {}): S3Storage {
  return new S3Storage(configFor(servers[kind]!, overrides), { onWarning: (message) => warnings.push(message) });
}

const s3rverTitle = serverTitle(S3RVER, choice);
describeStorageContract(`S3 (${s3rverTitle}, conditional writes enforced by the test proxy)`, {
  create: () => Promise.resolve(storageOn('enforcing')),
});
describeStorageContract(`S3 (${s3rverTitle}, conditional writes ignored: read-back fallback)`, {
  create: () => Promise.resolve(storageOn('ignoring')),
});
if (minioRuns)
  describeStorageContract(`S3 (${MINIO})`, {
    create: () => Promise.resolve(new S3Storage(configFor(minio!), { onWarning: (message) => warnings.push(message) })),
  });

describe(`S3Storage (${s3rverTitle})`, () => {
  it('probes conditional writes: enforced where the server refuses a second create, else the fallback with a warning', async () => {
    expect(await storageOn('enforcing').conditionalWrites()).toBe('enforced');
    warnings.length = 0;
    const ignoring = storageOn('ignoring');
    expect(await ignoring.conditionalWrites()).toBe('ignored');
    expect(warnings.join('\n')).toMatch(/does not enforce conditional writes.*write-then-read-back/);
  });

  it('writes (empty ones too), claims and probes without a word on stderr (the SDK warns of bodies of unknown length)', async () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      for (const kind of ['enforcing', 'ignoring'] as const) {
        const storage = storageOn(kind);
        await storage.conditionalWrites();
        await storage.put('app/dev/empty', '');
        await storage.put('app/dev/bytes', new Uint8Array([1, 2, 3]));
        expect(await storage.putIfAbsent('app/dev/claim', '')).toBe(true);
      }
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('create-only puts of one key from 8 clients at once: exactly one wins, every round (how two backups never share an id)', async () => {
    const clients = Array.from({ length: 8 }, () => storageOn('enforcing', { prefix: 'claims' }));
    for (let round = 0; round < 25; round++) {
      const key = `.reservations/backup-${round}`;
      const won = await Promise.all(clients.map((client) => client.putIfAbsent(key, '')));
      expect(won.filter(Boolean), `round ${round}`).toHaveLength(1);
    }
  });

  it('records s3://bucket/prefix/key as the location and refuses other buckets and prefixes', () => {
    const storage = storageOn('enforcing', { prefix: 'team/faber' });
    expect(storage.locationOf('app/dev/x.sql.zst')).toBe(
      `s3://${servers.enforcing!.bucket}/team/faber/app/dev/x.sql.zst`,
    );
    expect(storage.keyOf('s3://other/team/faber/app/dev/x.sql.zst')).toBeUndefined();
    expect(storage.keyOf(`s3://${servers.enforcing!.bucket}/team/other/x.sql.zst`)).toBeUndefined();
  });

  it('uploads in parts, and an upload left unfinished is listed as pending and can be aborted', async () => {
    const storage = storageOn('enforcing');
    const writer = await storage.createWriter('app/dev/crashed.sql.zst');
    await new Promise<void>((resolve, reject) =>
      writer.stream.write(Buffer.alloc(9 * 1024 * 1024, 1), (error) => (error ? reject(error) : resolve())),
    );
    await expect
      .poll(async () => (await storage.pendingUploads('app/')).map((upload) => upload.key), { timeout: 20_000 })
      .toEqual(['app/dev/crashed.sql.zst']);
    const [pending] = await storage.pendingUploads('app/');
    await storage.abortUpload(pending!);
    expect(await storage.pendingUploads('app/')).toEqual([]);
    expect(await storage.stat('app/dev/crashed.sql.zst')).toBeUndefined();
    writer.stream.destroy();
  });

  it('a wrong bucket is STORAGE_NOT_FOUND, a wrong secret STORAGE_AUTH_FAILED, a closed port STORAGE_UNAVAILABLE: each with suggestions', async () => {
    await expect(storageOn('enforcing', { bucket: 'no-such-bucket' }).prepare('')).rejects.toMatchObject({
      code: 'STORAGE_NOT_FOUND',
      suggestions: arrayContaining([stringMatching(/bucket/)]),
    });
    const config = configFor(servers.enforcing!);
    const wrongSecret = new S3Client({
      endpoint: config.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: servers.enforcing!.env['AWS_ACCESS_KEY_ID']!, secretAccessKey: 'wrong' },
    });
    const denied = await new S3Storage(config, { client: wrongSecret }).put('x', 'x').catch((error: unknown) => error);
    expect(denied).toMatchObject({
      code: 'STORAGE_AUTH_FAILED',
      suggestions: arrayContaining([stringMatching(/AWS_ACCESS_KEY_ID/)]),
    });
    expect(JSON.stringify(denied) + String(denied)).not.toContain(servers.enforcing!.env['AWS_SECRET_ACCESS_KEY']);
    const closed = new S3Storage(configFor(servers.enforcing!, { endpoint: 'http://127.0.0.1:9' }));
    await expect(closed.read('x')).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  }, 60_000);
});
