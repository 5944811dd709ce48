import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';

/** A stored file: a local path, or an object streamed from its store. */
export type FeedSource = string | { open(): Promise<Readable> };

/**
 * Reads of 256 KB into three reused buffers keep a decoder busy (it decodes one while the next is
 * read). fs.createReadStream allocates a new buffer per read instead: 104 MB of garbage for a
 * 1 M-row backup, which piled up between collections. `npm run bench`, restoring a 1 M-row backup
 * (with its single decode): peak RSS 147-148-149 -> 105-105-111 MB. (64 KB decoder chunks on top
 * measured worse: 124-135-141 MB, and more CPU.)
 */
const READ_SIZE = 256 * 1024;
const BUFFERS = 3;

/**
 * Writes a stored file's bytes into `sink` (a decoder), hashing and counting them on the way, and
 * ends it. `reuse`: a buffer is read into again once the sink's write callback says it was
 * consumed, which zlib's streams call when they have taken the input in; a sink that keeps the
 * chunks it was given (a PassThrough) needs `reuse: false`.
 */
export class FileFeed {
  bytes = 0;
  /** The file's SHA-256 once every byte was written to the sink. */
  sha256: string | undefined;
  /** Set when reading the file failed (the sink is destroyed with this error too). */
  readError: Error | undefined;
  readonly done: Promise<void>;

  constructor(path: FeedSource, sink: Writable, options: { reuse: boolean; signal?: AbortSignal | undefined }) {
    this.done = (
      typeof path === 'string' ? this.#feed(path, sink, options) : this.#feedStream(path, sink, options.signal)
    ).catch((error: unknown) => {
      if (!sink.destroyed) {
        this.readError = error as Error;
        sink.destroy(error as Error);
      }
    });
  }

  async #feed(
    path: string,
    sink: Writable,
    options: { reuse: boolean; signal?: AbortSignal | undefined },
  ): Promise<void> {
    const handle = await open(path, 'r');
    const hash = createHash('sha256');
    const spares = new Spares(options.reuse ? BUFFERS : Infinity, READ_SIZE);
    // A destroyed zlib stream may never call back for the chunk it was working on. (Not a
    // Promise.race against a 'closed' promise: each race leaves a reaction on it holding the buffer
    // it resolved with, so every buffer read stayed reachable until the end: 437 MB peak RSS
    // decrypting a 300 MB age file, 138 MB without.)
    sink.once('close', () => spares.close());
    try {
      for (;;) {
        options.signal?.throwIfAborted();
        const buffer = await spares.take();
        if (!buffer || sink.destroyed) return;
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        if (sink.destroyed) return;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        this.bytes += bytesRead;
        const more = sink.write(chunk, () => spares.give(buffer));
        // Reused buffers bound what is in flight already; fresh ones need the sink's back-pressure.
        if (!more && !options.reuse) await drained(sink);
      }
    } finally {
      await handle.close();
    }
    this.sha256 = hash.digest('hex');
    sink.end();
  }

  /** A remote object: its stream's chunks, with the sink's back-pressure. */
  async #feedStream(
    source: { open(): Promise<Readable> },
    sink: Writable,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const stream = await source.open();
    const hash = createHash('sha256');
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        signal?.throwIfAborted();
        if (sink.destroyed) return;
        hash.update(chunk);
        this.bytes += chunk.length;
        if (!sink.write(chunk)) await drained(sink);
      }
    } finally {
      stream.destroy();
    }
    this.sha256 = hash.digest('hex');
    sink.end();
  }
}

/** Read buffers: at most `max` made; take() waits for one to come back when all are out. */
class Spares {
  readonly #max: number;
  readonly #size: number;
  readonly #free: Buffer[] = [];
  readonly #waiting: Array<(buffer: Buffer | undefined) => void> = [];
  #made = 0;
  #closed = false;

  constructor(max: number, size: number) {
    this.#max = max;
    this.#size = size;
  }

  /** A buffer to read into; undefined once the sink has closed. */
  take(): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const free = this.#free.pop();
    if (free) return Promise.resolve(free);
    if (this.#made < this.#max) {
      this.#made++;
      return Promise.resolve(Buffer.allocUnsafeSlow(this.#size));
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  close(): void {
    this.#closed = true;
    for (const waiting of this.#waiting.splice(0)) waiting(undefined);
  }

  give(buffer: Buffer): void {
    if (this.#max === Infinity) return;
    const waiting = this.#waiting.shift();
    if (waiting) waiting(buffer);
    else this.#free.push(buffer);
  }
}

function drained(sink: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.once('drain', done);
    sink.once('close', done);
  });
}
