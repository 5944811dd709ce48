// A real S3-compatible server for the tests and `npm run bench` (group s3), in this process on a free port: @20minutes/s3rver
// (objects, multipart upload, paginated ListObjectsV2) behind a small HTTP proxy that adds what
// s3rver lacks: AbortMultipartUpload, ListMultipartUploads, (optionally) enforcement of
// If-None-Match: * / If-Match on PUT as AWS S3, R2 and MinIO do, and SigV4 checking of requests
// to bucket URLs with a trailing slash (the SDK signs "/bucket/", s3rver checks "/bucket"; so the
// proxy checks every signature itself and s3rver is told to accept them).
import { createHmac, createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, S3Client, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';

/** module.exports of a CommonJS package, loaded the same way by vitest and by the bench (ESM, where `require` is undefined). */
async function loadCommonJs<T>(specifier: string): Promise<T> {
  return ((await import(specifier)) as { default: T }).default;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;
interface FilesystemStoreClass {
  prototype: {
    getResourcePath(bucket: string, key: string, resource: string): string;
    deleteObject(bucket: string, key: string): Promise<void>;
  };
}
interface AccountModule {
  DUMMY_ACCOUNT: { createKeyPair(accessKeyId: string, secretAccessKey: string): void };
}

export const TEST_ACCESS_KEY_ID = 'FABERTESTACCESSKEY';
/** Distinctive, so a test can search every output, key and manifest for it. */
export const TEST_SECRET_ACCESS_KEY = `faber-test-secret-${randomBytes(6).toString('hex')}`;

/** What a process needs to reach a test S3 server through the AWS default chain. */
export function testS3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: TEST_SECRET_ACCESS_KEY,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export interface TestS3Server {
  endpoint: string;
  /** s3rver itself, without the proxy. */
  backendEndpoint: string;
  bucket: string;
  /** What a process needs to reach the server through the AWS default chain. */
  env: Record<string, string>;
  /** Multipart uploads started and neither completed nor aborted. */
  pendingUploads(): Array<{ key: string; uploadId: string }>;
  /** While true, every UploadPart fails with 500 InternalError (a failing service). */
  failParts(fail: boolean): void;
  /** Makes every pending upload look `ms` older (cleanup leaves recent ones alone). */
  ageUploads(ms: number): void;
  close(): Promise<void>;
}

/**
 * s3rver's DELETE removes the object's directories once empty, with `rm -r`, while a PUT of
 * another key may have just created one of them and not yet its file: that object was then lost
 * although its PUT had answered 200 (two create-only claims of one key both succeeded, under
 * load). S3 has no directories; this store keeps them, and deletes only the object's own files.
 */
function keepDirectoriesOnDelete(store: FilesystemStoreClass): void {
  store.prototype.deleteObject = async function deleteObject(bucket, key) {
    const files = ['object', 'object.md5', 'metadata.json'].map((resource) =>
      this.getResourcePath(bucket, key, resource),
    );
    await Promise.all(files.map((file) => rm(file, { force: true })));
  };
}

export async function startS3Server(options: { enforceConditions: boolean; bucket?: string }): Promise<TestS3Server> {
  const bucket = options.bucket ?? 'faber-test-bucket';
  const directory = await mkdtemp(path.join(os.tmpdir(), 'faber-s3rver-'));
  const S3rver = await loadCommonJs<S3rverConstructor>('@20minutes/s3rver');
  keepDirectoriesOnDelete(await loadCommonJs<FilesystemStoreClass>('@20minutes/s3rver/lib/stores/filesystem.js'));
  (await loadCommonJs<AccountModule>('@20minutes/s3rver/lib/models/account.js')).DUMMY_ACCOUNT.createKeyPair(
    TEST_ACCESS_KEY_ID,
    TEST_SECRET_ACCESS_KEY,
  );
  const backend = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    allowMismatchedSignatures: true,
    configureBuckets: [{ name: bucket }],
  });
  const backendAddress = await backend.run();
  const backendUrl = `http://127.0.0.1:${backendAddress.port}`;
  const head = new S3Client({
    endpoint: backendUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
  });
  const uploads = new Map<string, { key: string; uploadId: string; initiated: Date }>();
  const keyLocks = new Map<string, Promise<void>>();
  const inFlight = new Set<http.ClientRequest>();
  let failingParts = false;

  const proxy = http.createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500).end(String(error));
      else response.destroy();
    });
  });

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://proxy');
    if (!(await signatureIsValid(request, url))) {
      request.resume();
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>',
      );
      return;
    }
    const [, bucketName = '', ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const query = url.searchParams;
    if (request.method === 'GET' && key === '' && query.has('uploads'))
      return listUploads(bucketName, query.get('prefix') ?? '', response);
    if (request.method === 'DELETE' && query.has('uploadId')) {
      uploads.delete(query.get('uploadId') ?? '');
      request.resume();
      response.writeHead(204).end();
      return;
    }
    if (failingParts && request.method === 'PUT' && query.has('uploadId')) {
      request.resume();
      response.writeHead(500, { 'content-type': 'application/xml' });
      response.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>',
      );
      return;
    }
    if (request.method === 'PUT' && !query.has('uploadId') && key !== '')
      return withKeyLock(key, () => conditionalPut(request, response, bucketName, key));
    const forwarded = await forward(request, response, { capture: request.method === 'POST' });
    if (request.method === 'POST' && query.has('uploads') && forwarded.status === 200) {
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(forwarded.body)?.[1];
      if (uploadId) uploads.set(uploadId, { key, uploadId, initiated: new Date() });
    }
    if (request.method === 'POST' && query.has('uploadId') && forwarded.status === 200)
      uploads.delete(query.get('uploadId') ?? '');
  }

  async function conditionalPut(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    bucketName: string,
    key: string,
  ): Promise<void> {
    const noneMatch = request.headers['if-none-match'];
    const match = request.headers['if-match'];
    if (options.enforceConditions && (noneMatch !== undefined || match !== undefined)) {
      const current = await currentObject(bucketName, key);
      const refused = (noneMatch === '*' && current !== undefined) || (match !== undefined && current?.ETag !== match);
      if (refused) {
        request.resume();
        response.writeHead(current === undefined && match !== undefined ? 404 : 412, {
          'content-type': 'application/xml',
        });
        response.end(
          `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${current === undefined && match !== undefined ? 'NoSuchKey' : 'PreconditionFailed'}</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`,
        );
        return;
      }
    }
    const forwarded = await forward(request, response, { capture: false });
    if (forwarded.status === 200) await untilVisible(bucketName, key);
  }

  /**
   * s3rver answers a PUT whose body it holds in memory before the object's file exists (it starts
   * the write and resolves at once): a HEAD just after it finds nothing, and a second create-only
   * PUT of the key succeeded too (seen under load). S3 shows a completed PUT to the next request;
   * the key's lock is held until s3rver does.
   */
  async function untilVisible(bucketName: string, key: string): Promise<void> {
    for (let attempt = 0; attempt < 200 && !(await currentObject(bucketName, key)); attempt++)
      await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /**
   * The object as s3rver has it, or undefined when it answers 404. Any other failure is asked
   * again: s3rver reads an object's metadata file while a concurrent PUT rewrites it and then
   * answers 500, and taking that for "absent" let two create-only PUTs of one key both succeed.
   */
  async function currentObject(bucketName: string, key: string): Promise<HeadObjectCommandOutput | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await head.send(new HeadObjectCommand({ Bucket: bucketName, Key: key }));
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404 || attempt >= 50) return undefined;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  function withKeyLock(key: string, run: () => Promise<void>): Promise<void> {
    const previous = keyLocks.get(key) ?? Promise.resolve();
    const next = previous.then(run, run);
    keyLocks.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  }

  function listUploads(bucketName: string, prefix: string, response: http.ServerResponse): void {
    const items = [...uploads.values()]
      .filter((upload) => upload.key.startsWith(prefix))
      .map(
        (upload) =>
          `<Upload><Key>${escapeXml(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId><Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
      )
      .join('');
    response.writeHead(200, { 'content-type': 'application/xml' });
    response.end(
      `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${bucketName}</Bucket>` +
        `<Prefix>${escapeXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`,
    );
  }

  function forward(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    { capture }: { capture: boolean },
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const upstream = http.request(
        `${backendUrl}${request.url ?? '/'}`,
        { method: request.method, headers: request.headers },
        (reply) => {
          response.writeHead(reply.statusCode ?? 502, reply.headers);
          const chunks: Buffer[] = [];
          reply.on('data', (chunk: Buffer) => {
            if (capture) chunks.push(chunk);
            response.write(chunk);
          });
          reply.on('end', () => {
            response.end();
            resolve({ status: reply.statusCode ?? 502, body: Buffer.concat(chunks).toString('utf8') });
          });
          reply.on('error', reject);
        },
      );
      upstream.on('error', reject);
      // A client killed mid-upload must not leave s3rver waiting for the rest of the body.
      request.on('close', () => {
        if (!request.complete) upstream.destroy();
      });
      inFlight.add(upstream);
      upstream.on('close', () => inFlight.delete(upstream));
      request.pipe(upstream);
    });
  }

  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return {
    endpoint,
    backendEndpoint: backendUrl,
    bucket,
    env: testS3Env(),
    pendingUploads: () => [...uploads.values()].map(({ key, uploadId }) => ({ key, uploadId })),
    failParts: (fail) => {
      failingParts = fail;
    },
    ageUploads: (ms) => {
      for (const upload of uploads.values()) upload.initiated = new Date(upload.initiated.getTime() - ms);
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => proxy.close(() => resolve()));
      proxy.closeAllConnections();
      for (const upstream of inFlight) upstream.destroy();
      await closed;
      head.destroy();
      await backend.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

class NodeSha256 {
  readonly #hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  constructor(secret?: string | Uint8Array | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): void {
    this.#hash.update(toBuffer(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.#hash.digest()));
  }
  reset(): void {}
}

function toBuffer(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

const signer = new SignatureV4({
  credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
  region: 'us-east-1',
  service: 's3',
  sha256: NodeSha256,
  uriEscapePath: false,
  applyChecksum: false,
});

/** Recomputes the request's SigV4 header signature over the headers it says it signed. */
async function signatureIsValid(request: http.IncomingMessage, url: URL): Promise<boolean> {
  const authorization = request.headers.authorization ?? '';
  const parts = /Credential=([^/]+)\/[^,]+, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)/.exec(authorization);
  if (!parts || parts[1] !== TEST_ACCESS_KEY_ID) return false;
  const headers: Record<string, string> = {};
  for (const name of parts[2]!.split(';')) headers[name] = String(request.headers[name] ?? '');
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of url.searchParams) {
    const existing = query[name];
    query[name] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  const amzDate = headers['x-amz-date'] ?? '';
  const signingDate = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  const signed = await signer.sign(
    {
      method: request.method ?? 'GET',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: url.pathname,
      query,
      headers,
      body: undefined,
    },
    { signingDate },
  );
  const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers['authorization'] ?? ''))?.[1];
  return expected === parts[3];
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
