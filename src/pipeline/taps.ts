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
  /** The last bytes, in a ring written in place: no allocation per chunk, and no chunk kept alive. */
  readonly #ring: Buffer;
  #ringEnd = 0;
  #total = 0;

  constructor(keep = 4096) {
    super({ highWaterMark: 256 * 1024 });
    this.#keep = keep;
    this.#ring = Buffer.alloc(keep);
  }

  /** The last `keep` bytes (fewer if fewer flowed through). */
  get tail(): Buffer {
    if (this.#total < this.#keep) return Buffer.from(this.#ring.subarray(0, this.#total));
    return Buffer.concat([this.#ring.subarray(this.#ringEnd), this.#ring.subarray(0, this.#ringEnd)]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.head.length < this.#keep)
      this.head = Buffer.concat([this.head, chunk.subarray(0, this.#keep - this.head.length)]);
    this.#remember(chunk.subarray(-this.#keep));
    this.#total += chunk.length;
    callback(null, chunk);
  }

  #remember(bytes: Buffer): void {
    const untilWrap = this.#keep - this.#ringEnd;
    bytes.copy(this.#ring, this.#ringEnd, 0, Math.min(bytes.length, untilWrap));
    if (bytes.length > untilWrap) bytes.copy(this.#ring, 0, untilWrap);
    this.#ringEnd = (this.#ringEnd + bytes.length) % this.#keep;
  }
}
