import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * Streaming a dump allocates a fresh buffer for every chunk read from a pipe or a file and for
 * every chunk zlib produces: gigabytes of short-lived buffers. V8 frees them only when it
 * collects, and it lets about 64 MB of them pile up first (its external-memory soft limit): on
 * top of the ~80 MB the process holds anyway, that was most of a backup's peak RSS, and the
 * bigger the chunks the worse. A young-generation collection every 16 MB of streamed data frees
 * them while they are still young, in a fraction of a millisecond each. Measured with bench/ on
 * an 870 MB dump: peak RSS 160-180 MB without, 115-125 MB with; CPU cost under 0.1 s.
 * Not more often: a buffer still in flight across two collections is promoted to the old
 * generation, which only a full collection frees (every 4-8 MB: 140 MB again).
 * The bytes are counted by HashingTap, which every pipeline that streams a dump goes through.
 */
const COLLECT_EVERY_BYTES = 16 * 1024 * 1024;
let bytesSinceCollection = 0;
/** null until first needed; undefined where the runtime offers no way to ask for a collection. */
let collectYoung: (() => void) | undefined | null = null;

function youngCollector(): (() => void) | undefined {
  try {
    const exposed = globalThis.gc;
    if (typeof exposed === 'function') return () => exposed({ type: 'minor' });
    // --expose-gc only affects contexts created while it is set: one private context gets gc(),
    // the process's own global object is left as it was.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as NodeJS.GCFunction | undefined;
    v8.setFlagsFromString('--no-expose-gc');
    return typeof gc === 'function' ? () => gc({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  }
}

/** Counts streamed bytes; every COLLECT_EVERY_BYTES, frees the spent buffers. */
function noteStreamedBytes(bytes: number): void {
  bytesSinceCollection += bytes;
  if (bytesSinceCollection < COLLECT_EVERY_BYTES) return;
  bytesSinceCollection = 0;
  if (collectYoung === null) collectYoung = youngCollector();
  collectYoung?.();
}

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
    noteStreamedBytes(chunk.length);
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
  /**
   * The last bytes, in a ring written in place: no allocation per chunk, and no chunk kept
   * alive (one that outlives two young-generation collections above stays until a full one).
   */
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
    if (this.head.length < this.#keep) this.head = Buffer.concat([this.head, chunk.subarray(0, this.#keep - this.head.length)]);
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
