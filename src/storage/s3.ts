import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { S3StorageConfig } from '../config/schema.ts';
import { storageError, statusOf } from './s3-errors.ts';
import {
  notFound,
  type PendingUpload,
  type PutOptions,
  type Storage,
  type StoredObject,
  type StorageWriter,
} from './storage.ts';
import { PartUploader } from './s3-upload.ts';

/**
 * Fixed part size and parts in flight: an upload holds PART_SIZE × (PARTS_IN_FLIGHT + 1) in
 * reused buffers (see PartUploader). 5 MiB is S3's minimum part size; it caps an object at
 * 10 000 parts = 50 GB compressed.
 */
export const PART_SIZE = 5 * 1024 * 1024;
export const PARTS_IN_FLIGHT = 2;
/** How long a write-then-read-back claim waits for a competing writer to show (stores without conditional writes). */
const CLAIM_SETTLE_MS = 750;
const CLAIM_TOKEN_HEADER = 'faber-claim';

export type ConditionalWrites = 'enforced' | 'ignored';

/**
 * A bucket (and optional key prefix) of S3 or an S3-compatible service. Credentials come only
 * from the AWS default chain. Objects are replaced whole by S3 itself; create-only and
 * replace-if-matches use If-None-Match / If-Match where the service enforces them (probed once),
 * and otherwise fall back to write-then-read-back (see putIfAbsent).
 */
export class S3Storage implements Storage {
  readonly kind = 's3';
  readonly description: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly #onWarning: (message: string) => void;
  #conditional: Promise<ConditionalWrites> | undefined;

  constructor(config: S3StorageConfig, options: { client?: S3Client; onWarning?: (message: string) => void } = {}) {
    this.bucket = config.bucket;
    this.prefix = config.prefix ? `${config.prefix}/` : '';
    this.description = `s3://${this.bucket}/${this.prefix}`;
    this.client = options.client ?? new S3Client(clientConfig(config));
    this.#onWarning = options.onWarning ?? ((message) => console.warn(`⚠️  ${message}`));
  }

  locationOf(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  keyOf(location: string): string | undefined {
    const root = `s3://${this.bucket}/${this.prefix}`;
    if (!location.startsWith(root) || location.length === root.length) return undefined;
    const key = location.slice(root.length);
    return key.split('/').includes('..') ? undefined : key;
  }

  localPath(): undefined {
    return undefined;
  }

  async prepare(_prefix?: string): Promise<void> {
    await this.#call('reach the bucket', '', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })));
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return Buffer.from(await (await this.#getObject(key)).transformToByteArray());
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async get(key: string): Promise<Readable> {
    const body = await this.#getObject(key);
    return body instanceof Readable ? body : Readable.from(body as AsyncIterable<Uint8Array>);
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const head = await this.#call('read', key, () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#full(key) })),
      );
      return {
        key,
        size: head.ContentLength ?? 0,
        modifiedMs: head.LastModified?.getTime() ?? 0,
        ...(head.ETag ? { etag: head.ETag } : {}),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Lists every object under `prefix` (ListObjectsV2, page by page). A shallow listing is derived
   * from it here rather than with Delimiter, which some S3-compatible servers get wrong for
   * nested prefixes.
   */
  async list(prefix: string, options: { shallow?: boolean } = {}): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.#call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.#full(prefix),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        found.push({
          key: this.#relative(object.Key),
          size: object.Size ?? 0,
          modifiedMs: object.LastModified?.getTime() ?? 0,
          ...(object.ETag ? { etag: object.ETag } : {}),
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const sorted = found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return options.shallow ? childrenOf(prefix, sorted) : sorted;
  }

  async put(key: string, data: string | Uint8Array, _options?: PutOptions): Promise<void> {
    await this.#call('write', key, () => this.client.send(this.#putCommand(key, data)));
  }

  /**
   * If-None-Match: * where the service enforces it. Elsewhere: give up if the object exists, write
   * it with a random token, wait for a competing writer to show, and read the token back; the
   * last writer keeps the claim. That leaves a window (two claims of one id within the same
   * moment on a store that ignores conditions) which the probe's warning names.
   */
  async putIfAbsent(key: string, data: string | Uint8Array): Promise<boolean> {
    if ((await this.conditionalWrites()) === 'enforced') return this.#conditionalPut(key, data, { IfNoneMatch: '*' });
    if (await this.stat(key)) return false;
    const token = randomBytes(12).toString('hex');
    await this.#call('write', key, () =>
      this.client.send(this.#putCommand(key, data, { Metadata: { [CLAIM_TOKEN_HEADER]: token } })),
    );
    await sleep(CLAIM_SETTLE_MS);
    const head = await this.#call('read', key, () =>
      this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#full(key) })),
    ).catch(() => undefined);
    return head?.Metadata?.[CLAIM_TOKEN_HEADER] === token;
  }

  async putIfMatch(key: string, data: string | Uint8Array, etag: string): Promise<boolean> {
    if ((await this.conditionalWrites()) === 'enforced') return this.#conditionalPut(key, data, { IfMatch: etag });
    if ((await this.stat(key))?.etag !== etag) return false;
    await this.put(key, data);
    return true;
  }

  /**
   * Whether the service enforces If-None-Match on PUT, found once per storage by creating a
   * probe object twice: the second create must be refused. Services that ignore the header (or
   * reject it as not implemented) get the fallback, and the user is told.
   */
  conditionalWrites(): Promise<ConditionalWrites> {
    this.#conditional ??= this.#probeConditionalWrites();
    return this.#conditional;
  }

  createWriter(key: string): Promise<StorageWriter> {
    const stream = new PartUploader({
      client: this.client,
      bucket: this.bucket,
      key: this.#full(key),
      partSize: PART_SIZE,
      partsInFlight: PARTS_IN_FLIGHT,
      explain: (error) => storageError(error, this, 'upload', key),
    });
    return Promise.resolve({
      stream,
      // The object is complete once the stream has finished: its last request completes the upload.
      finish: () => Promise.resolve(),
      abort: async () => {
        await stream.abort();
        await this.delete(key).catch(() => undefined);
      },
    });
  }

  async move(from: string, to: string): Promise<void> {
    await this.#call('copy', from, () =>
      this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: this.#full(to),
          CopySource: `${this.bucket}/${encodeURI(this.#full(from))}`,
        }),
      ),
    );
    await this.delete(from);
  }

  async delete(key: string): Promise<void> {
    await this.#call('delete', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#full(key) })),
    );
  }

  /** Multipart uploads under `prefix` that were started and never completed or aborted. */
  async pendingUploads(prefix: string): Promise<PendingUpload[]> {
    const found: PendingUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.#call('list uploads', prefix, () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: this.#full(prefix),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        ),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId)
          found.push({
            key: this.#relative(upload.Key),
            uploadId: upload.UploadId,
            initiatedMs: upload.Initiated?.getTime() ?? 0,
          });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return found;
  }

  async abortUpload(upload: PendingUpload): Promise<void> {
    await this.#call('abort the upload of', upload.key, () =>
      this.client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.#full(upload.key),
          UploadId: upload.uploadId,
        }),
      ),
    );
  }

  /**
   * A PutObject of bytes in hand, with their length: without it the SDK prints "Are you using a
   * Stream of unknown length as the Body of a PutObject request?" on stderr for an empty body.
   */
  #putCommand(key: string, data: string | Uint8Array, extra: Partial<PutObjectCommandInput> = {}): PutObjectCommand {
    const length = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    return new PutObjectCommand({
      Bucket: this.bucket,
      Key: this.#full(key),
      Body: data,
      ContentLength: length,
      ...extra,
    });
  }

  async #probeConditionalWrites(): Promise<ConditionalWrites> {
    const key = `.probe/conditional-${randomBytes(8).toString('hex')}`;
    const attempt = () => this.client.send(this.#putCommand(key, '', { IfNoneMatch: '*' }));
    let result: ConditionalWrites = 'ignored';
    try {
      await attempt();
      result = await attempt().then(
        () => 'ignored' as const,
        (error: unknown) => {
          if (statusOf(error) === 412) return 'enforced' as const;
          throw error;
        },
      );
    } catch (error) {
      // Some services refuse the header outright (501 NotImplemented, 400): that is "not enforced" too.
      const status = statusOf(error);
      if (status !== 501 && status !== 400) throw storageError(error, this, 'write', key);
    } finally {
      await this.delete(key).catch(() => undefined);
    }
    if (result === 'ignored') {
      this.#onWarning(
        `${this.description} does not enforce conditional writes (If-None-Match); backup ids are claimed by write-then-read-back instead, ` +
          'which is safe unless two machines claim the same id within the same second',
      );
    }
    return result;
  }

  async #conditionalPut(
    key: string,
    data: string | Uint8Array,
    condition: { IfNoneMatch: string } | { IfMatch: string },
  ): Promise<boolean> {
    try {
      await this.client.send(this.#putCommand(key, data, condition));
      return true;
    } catch (error) {
      // 412: the condition failed; 409: a concurrent conditional write won; 404: If-Match on a missing object.
      const status = statusOf(error);
      if (status === 412 || status === 409 || (status === 404 && 'IfMatch' in condition)) return false;
      throw storageError(error, this, 'write', key);
    }
  }

  async #getObject(key: string) {
    const object = await this.#call('read', key, () =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#full(key) })),
    );
    if (!object.Body) throw notFound(key, this.description);
    return object.Body;
  }

  async #call<T>(action: string, key: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw storageError(error, this, action, key);
    }
  }

  #full(key: string): string {
    if (key.split('/').includes('..')) throw new Error(`Invalid storage key ${key}`);
    return `${this.prefix}${key}`;
  }

  #relative(fullKey: string): string {
    return fullKey.startsWith(this.prefix) ? fullKey.slice(this.prefix.length) : fullKey;
  }
}

/** The direct children of the directory `prefix`: its objects, and one directory entry per deeper level (newest time of what is in it). */
function childrenOf(prefix: string, objects: StoredObject[]): StoredObject[] {
  const children = new Map<string, StoredObject>();
  for (const object of objects) {
    const rest = object.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash === -1) {
      children.set(object.key, object);
      continue;
    }
    const key = `${prefix}${rest.slice(0, slash)}`;
    const existing = children.get(key);
    children.set(key, {
      key,
      size: 0,
      modifiedMs: Math.max(existing?.modifiedMs ?? 0, object.modifiedMs),
      directory: true,
    });
  }
  return [...children.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * The SDK finds credentials itself (environment, profile, web identity, instance role): none
 * are ever read from the config. Services other than AWS reject the SDK's default CRC checksums,
 * so with an endpoint they are sent only where an operation requires one.
 */
function defaultRegion(): Promise<string> {
  return Promise.resolve(process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1');
}

export function clientConfig(config: S3StorageConfig): S3ClientConfig {
  return {
    // An S3-compatible endpoint often has no region of its own; the SDK still needs one to sign.
    ...(config.region ? { region: config.region } : config.endpoint ? { region: defaultRegion } : {}),
    ...(config.endpoint
      ? {
          endpoint: config.endpoint,
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
    ...(config.force_path_style ? { forcePathStyle: true } : {}),
    maxAttempts: 4,
  };
}
