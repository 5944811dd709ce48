import { Writable } from 'node:stream';
import { freeBuffer, freeIfHandedOver } from '../util/spent-buffers.ts';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

export interface UploadTarget {
  client: S3Client;
  bucket: string;
  /** The object's full key (with the storage's prefix). */
  key: string;
  partSize: number;
  /** Parts uploading at once; the writer waits for one to finish before it fills another. */
  partsInFlight: number;
  /** Turns a failed request into the error the caller reports (the service's own words, an error code). */
  explain: (error: unknown) => Error;
}

/**
 * A streamed upload through a few part buffers that are reused: a part is copied into a free
 * buffer, uploaded, and its buffer taken again once S3 has it. (lib-storage's Upload copies every
 * part into a fresh buffer: for a 300 MB backup 300 MB of 5 MiB allocations that V8 frees late,
 * the largest part of such a backup's memory and of its garbage collection.) An object smaller
 * than one part is one PutObject; a larger one a multipart upload, visible only once completed.
 * `abort()` stops it and removes what was started.
 */
export class PartUploader extends Writable {
  readonly #target: UploadTarget;
  readonly #free: Buffer[] = [];
  #buffers = 0;
  #current: Buffer | undefined;
  #filled = 0;
  #uploadId: Promise<string> | undefined;
  #nextPartNumber = 1;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #parts: CompletedPart[] = [];
  /** Resolves when a part's upload settles: a writer waiting for a free buffer tries again. */
  #partSettled: () => void = () => undefined;
  #failure: Error | undefined;
  #completed = false;
  #aborted: Promise<void> | undefined;

  constructor(target: UploadTarget) {
    super({ highWaterMark: 1024 * 1024 });
    this.#target = target;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#append(chunk).then(() => {
      // Copied into a part buffer: a chunk the pipeline handed over is read by nothing else.
      freeIfHandedOver(chunk);
      callback();
    }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#complete().then(() => callback(), callback);
  }

  /** Stops the upload and removes what it started (the parts of a multipart upload). */
  async abort(): Promise<void> {
    this.destroy();
    await this.#aborted;
  }

  /** Destroyed before it completed (a failed part, a failed pipeline stage, abort()): the parts are removed. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#completed) return callback(error);
    this.#aborted ??= this.#abortUpload();
    void this.#aborted.then(() => callback(error));
  }

  async #abortUpload(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
    const uploadId = await this.#uploadId?.catch(() => undefined);
    if (uploadId === undefined) return;
    const { client, bucket, key } = this.#target;
    await client
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
      .catch(() => undefined);
  }

  async #append(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length;) {
      this.#throwIfFailed();
      this.#current ??= await this.#freeBuffer();
      const copied = chunk.copy(this.#current, this.#filled, offset);
      offset += copied;
      this.#filled += copied;
      if (this.#filled === this.#target.partSize) this.#uploadPart();
    }
  }

  async #complete(): Promise<void> {
    const { client, bucket, key } = this.#target;
    if (this.#uploadId === undefined) {
      const body = this.#current?.subarray(0, this.#filled) ?? Buffer.alloc(0);
      await this.#send(() =>
        client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length })),
      );
      this.#done();
      return;
    }
    if (this.#filled > 0) this.#uploadPart();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
    this.#throwIfFailed();
    const uploadId = await this.#uploadId;
    const parts = [...this.#parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await this.#send(() =>
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      ),
    );
    this.#done();
  }

  /**
   * Complete: the part buffers are freed now, not at V8's next collection (the backup goes on to
   * read the object back, whose HTTP buffers pile up until one). Every part has been sent.
   */
  #done(): void {
    this.#completed = true;
    for (const buffer of this.#free.splice(0)) freeBuffer(buffer);
    if (this.#current) freeBuffer(this.#current);
    this.#current = undefined;
  }

  #uploadPart(): void {
    const { client, bucket, key } = this.#target;
    const buffer = this.#current!;
    const body = buffer.subarray(0, this.#filled);
    const partNumber = this.#nextPartNumber++;
    this.#current = undefined;
    this.#filled = 0;
    this.#uploadId ??= this.#send(async () => {
      const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      if (!created.UploadId) throw new Error('the service started a multipart upload without an upload id');
      return created.UploadId;
    });
    const uploadId = this.#uploadId;
    const part = this.#send(async () => {
      const { ETag } = await client.send(
        new UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: await uploadId,
          PartNumber: partNumber,
          Body: body,
        }),
      );
      this.#parts.push({ PartNumber: partNumber, ETag });
    })
      .catch((error: unknown) => {
        this.#failure ??= error as Error;
      })
      .finally(() => {
        this.#inFlight.delete(part);
        this.#free.push(buffer);
        this.#partSettled();
      });
    this.#inFlight.add(part);
  }

  /** A buffer for the next part: a free one, a new one while fewer exist than can be busy, or the next one freed. */
  async #freeBuffer(): Promise<Buffer> {
    for (;;) {
      this.#throwIfFailed();
      const free = this.#free.pop();
      if (free) return free;
      if (this.#buffers < this.#target.partsInFlight + 1) {
        this.#buffers += 1;
        return Buffer.allocUnsafeSlow(this.#target.partSize);
      }
      await new Promise<void>((resolve) => (this.#partSettled = resolve));
    }
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  async #send<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.#target.explain(error);
    }
  }
}
