/**
 * Which S3-compatible servers the S3 suites run against: always s3rver in this process (behind
 * the test proxy, test/support/s3-server.ts); also MinIO through Testcontainers when a Docker
 * engine answers. The choice is made once per run (global-setup.ts) and named in the suites'
 * titles, so a run without Docker says that it ran s3rver only.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '../../src/config/schema.ts';
import { TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, testS3Env } from './s3-server.ts';

export const S3RVER = 's3rver (in-process)';
export const MINIO = 'MinIO (Testcontainers)';
export type S3ServerName = typeof S3RVER | typeof MINIO;

export interface S3ServerChoice {
  names: S3ServerName[];
  /** One line for the test output: which servers run, and why MinIO does not. */
  note: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    faberS3Servers: S3ServerChoice;
  }
}

const DOCKER_PROBE_TIMEOUT_MS = 3000;
// Pinned, so a run is repeatable (a 2025 release); S3Storage probes conditional writes on it as on any service.
const MINIO_IMAGE = 'minio/minio:RELEASE.2025-05-24T17-08-30Z';
const MINIO_PORT = 9000;

/** null when a Docker engine answers within the timeout, else the reason it does not. */
async function dockerUnavailable(): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${DOCKER_PROBE_TIMEOUT_MS} ms`), DOCKER_PROBE_TIMEOUT_MS);
  });
  const probe = import('testcontainers')
    .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
    .then(
      () => null,
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function chooseS3Servers(): Promise<S3ServerChoice> {
  const reason = await dockerUnavailable();
  if (reason === null) return { names: [S3RVER, MINIO], note: `S3 suites run on ${S3RVER} and ${MINIO}` };
  return {
    names: [S3RVER],
    note: `S3 suites run on ${S3RVER} only: no Docker engine answered for ${MINIO} (${reason})`,
  };
}

export interface MinioServer {
  endpoint: string;
  bucket: string;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** MinIO in a container, with the test credentials and one empty bucket. */
export async function startMinio(bucket = 'faber-test-bucket'): Promise<MinioServer> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(MINIO_IMAGE)
    .withCommand(['server', '/data'])
    .withEnvironment({ MINIO_ROOT_USER: TEST_ACCESS_KEY_ID, MINIO_ROOT_PASSWORD: TEST_SECRET_ACCESS_KEY })
    .withExposedPorts(MINIO_PORT)
    .withWaitStrategy(Wait.forHttp('/minio/health/ready', MINIO_PORT))
    .start();
  const endpoint = `http://${container.getHost()}:${container.getMappedPort(MINIO_PORT)}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return {
    endpoint,
    bucket,
    env: testS3Env(),
    close: async () => {
      await container.stop();
    },
  };
}

/** A suite title's server part: s3rver's says so when it is the only one that ran. */
export function serverTitle(name: S3ServerName, choice: S3ServerChoice): string {
  return name === S3RVER && !choice.names.includes(MINIO) ? `${S3RVER}; MinIO not run: no Docker engine` : name;
}

/** The `backup.storage` block that points a test workspace at `server` under `prefix`. */
export function s3StorageConfig(server: { bucket: string; endpoint: string }, prefix: string): S3StorageConfig {
  return {
    type: 's3',
    bucket: server.bucket,
    prefix,
    endpoint: server.endpoint,
    force_path_style: true,
    region: 'us-east-1',
  };
}
