import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Passes bytes through unchanged while hashing and counting them. */
export class HashingTap extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #onChunk: ((bytes: number) => void) | undefined;
  bytes = 0;

  constructor(onChunk?: (totalBytes: number) => void) {
    super({ highWaterMark: 256 * 1024 });
    this.#onChunk = onChunk;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.length;
    this.#onChunk?.(this.bytes);
    callback(null, chunk);
  }

  digest(): string {
    return this.#hash.digest('hex');
  }
}

/** Keeps the first and last bytes that flowed through, for header/trailer checks. */
export class EdgeTap extends Transform {
  readonly #keep: number;
  head = Buffer.alloc(0);
  tail = Buffer.alloc(0);

  constructor(keep = 4096) {
    super({ highWaterMark: 256 * 1024 });
    this.#keep = keep;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.head.length < this.#keep) this.head = Buffer.concat([this.head, chunk.subarray(0, this.#keep - this.head.length)]);
    // Copy, so the tail does not pin a whole chunk in memory.
    this.tail = Buffer.from(Buffer.concat([this.tail, chunk.subarray(-this.#keep)]).subarray(-this.#keep));
    callback(null, chunk);
  }
}
