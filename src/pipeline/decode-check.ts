import { Transform, type TransformCallback } from 'node:stream';
import type { Compression } from '../config/schema.ts';
import { ZLIB_CHUNK_SIZE, createDecompressor, type BlockPool } from './compression.ts';
import { endsZlibOutputBuffer, freeBuffer, handOver } from '../util/spent-buffers.ts';

/**
 * Proof, in the same pass as the write, that the compressed bytes decode to exactly what the dump
 * tool produced. `recorder` sits before the compressor and remembers each block going in; `this`
 * sits after it, passes the compressed bytes on unchanged and feeds them to a decoder (zlib runs
 * it on the thread pool, so on the second core) whose output is compared byte for byte with the
 * remembered blocks. A block that has been compared goes back to the pool. No second read of the
 * file to decode it and no second content hash: the content was hashed once, on the way in.
 * Spent buffers are freed at once (spent-buffers.ts): each decoded one once compared, and each
 * compressed one by the storage writer once written (it is passed on only after the decoder has
 * taken it in).
 * (Tried: the decoder in a worker thread, blocks in shared memory. Its heap let decoded buffers
 * pile up: peak RSS 125-130 MB -> 195-225 MB on a 290 MB dump, and more CPU, not less.)
 */
export class DecodeCheck extends Transform {
  readonly recorder: Transform;
  readonly #decoder: Transform;
  readonly #pool: BlockPool;
  readonly #pending: Buffer[] = [];
  /** How far into #pending[0] the decoded bytes have been compared. */
  #offset = 0;
  #decodedBytes = 0;
  #problem: string | undefined;
  readonly #decoderDone: Promise<void>;
  #decoderSettled: () => void = () => undefined;
  /** A compressed chunk waiting for the decoder to take it in. */
  #waiting: (() => void) | undefined;

  constructor(compression: Exclude<Compression, 'none'>, pool: BlockPool) {
    super({ highWaterMark: 1024 * 1024 });
    this.#pool = pool;
    this.recorder = new Transform({
      highWaterMark: pool.blockSize,
      transform: (block: Buffer, _encoding, callback) => {
        if (this.#problem === undefined) this.#pending.push(block);
        callback(null, block);
      },
    });
    this.#decoder = createDecompressor(compression);
    this.#decoderDone = new Promise((resolve) => {
      this.#decoderSettled = resolve;
    });
    this.#decoder.on('data', (decoded: Buffer) => this.#compare(decoded));
    this.#decoder.once('end', () => this.#decoderSettled());
    this.#decoder.once('error', (error: Error) =>
      this.#fail(`the ${compression} stream does not decode: ${error.message}`),
    );
  }

  /** Why the written stream does not decode to the dump's bytes; null when it does, every byte of it. */
  get problem(): string | null {
    return this.#problem ?? null;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#problem !== undefined) return callback(null, chunk);
    // zlib calls back once it has taken the whole chunk in: from then on only the stages downstream read it.
    const passOn = () => {
      if (this.#waiting !== passOn) return;
      this.#waiting = undefined;
      // (Not after a failure: the decoder was destroyed, and may still be reading the chunk.)
      if (this.#problem === undefined && endsZlibOutputBuffer(chunk, ZLIB_CHUNK_SIZE)) handOver(chunk);
      callback(null, chunk);
    };
    this.#waiting = passOn;
    this.#decoder.write(chunk, passOn);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#problem === undefined) this.#decoder.end();
    void this.#decoderDone.then(() => {
      const missing = this.#pending.reduce((sum, block) => sum + block.length, 0) - this.#offset;
      if (missing > 0) this.#fail(`the compressed stream decodes to ${missing} bytes fewer than the dump produced`);
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#decoder.destroy();
    callback(error);
  }

  #compare(decoded: Buffer): void {
    if (this.#problem !== undefined) return;
    for (let at = 0; at < decoded.length;) {
      const block = this.#pending[0];
      if (!block)
        return this.#fail(
          `the compressed stream decodes to more bytes than the dump produced (from byte ${this.#decodedBytes + at})`,
        );
      const length = Math.min(block.length - this.#offset, decoded.length - at);
      if (decoded.compare(block, this.#offset, this.#offset + length, at, at + length) !== 0) {
        return this.#fail(
          `the compressed stream decodes to other bytes than the dump produced (within bytes ${this.#decodedBytes + at}-${this.#decodedBytes + at + length})`,
        );
      }
      at += length;
      this.#offset += length;
      if (this.#offset === block.length) {
        this.#pending.shift();
        this.#offset = 0;
        this.#pool.give(block);
      }
    }
    this.#decodedBytes += decoded.length;
    if (endsZlibOutputBuffer(decoded, ZLIB_CHUNK_SIZE)) freeBuffer(decoded);
  }

  #fail(problem: string): void {
    this.#problem ??= problem;
    // Nothing more to learn: stop decoding, and let the blocks go (the pool makes new ones).
    this.#pending.length = 0;
    this.#decoder.destroy();
    this.#decoderSettled();
    this.#waiting?.();
  }
}
