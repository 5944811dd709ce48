import { WriteStream } from 'node:fs';
import { Transform, type TransformCallback, type Writable } from 'node:stream';

/**
 * Frees the pipeline's spent buffers as soon as their last reader is done, instead of leaving them
 * to V8. node:zlib and node:crypto return a new buffer for every output, and V8 frees such buffers
 * only when it collects, once tens of megabytes of them have piled up: a backup decodes the whole
 * dump in its same-pass check, a megabyte at a time. `ArrayBuffer.prototype.transfer(0)` detaches a
 * buffer and frees its memory at once; every view of it reads as empty from then on, so a buffer
 * is freed only where nothing else can still read it.
 */

/**
 * Chunks passed on by a stage that no longer reads their buffer: the last stage to read such a
 * chunk frees the buffer. Kept by the chunk (the view), not its buffer: earlier chunks of the same
 * buffer may still be waiting to be written, and only this one comes after all of them.
 */
const handedOver = new WeakSet<Buffer>();

/**
 * Whether a zlib stream has moved on from the buffer this output chunk lies in: node:zlib writes
 * its output into a buffer of `chunkSize` bytes, and starts a new one once a chunk ends this one.
 * Earlier chunks of the same buffer came out before this one.
 */
export function endsZlibOutputBuffer(chunk: Buffer, chunkSize: number): boolean {
  return chunk.buffer.byteLength === chunkSize && chunk.byteOffset + chunk.length === chunkSize;
}

/** Frees the buffer under `chunk`; the caller holds every view of it and reads none of them again. */
export function freeBuffer(chunk: Buffer): void {
  if (!(chunk.buffer instanceof ArrayBuffer) || chunk.buffer.byteLength === 0) return;
  try {
    chunk.buffer.transfer(0);
  } catch {
    // A buffer its owner made non-detachable (WebAssembly memory, say): left to the collector.
  }
}

/**
 * `chunk` is passed on as the last view of its buffer that anything will read, after every other
 * one: the last stage to read it (the storage writer) frees the buffer with `freeIfHandedOver`.
 */
export function handOver(chunk: Buffer): void {
  handedOver.add(chunk);
}

/**
 * For the last stage to read a chunk, once it has read it and every chunk before it: frees the
 * chunk's buffer if it was handed over. Any other view (a copy, a slice) is left to the collector.
 */
export function freeIfHandedOver(chunk: Buffer): void {
  if (handedOver.delete(chunk)) freeBuffer(chunk);
}

type WriteCallback = (error?: Error | null) => void;

/** fs.WriteStream takes a path and options (as createWriteStream does); its declared type has only Writable's constructor. */
const FileWriteStream = WriteStream as unknown as new (
  path: string,
  options: { flags: string; mode: number; highWaterMark: number },
) => WriteStream;

/**
 * A file write stream that frees handed-over chunks once they are written: the write has called
 * back, so the stream holds no view of them any more.
 */
export class FreeingWriteStream extends FileWriteStream {
  override _write(chunk: Buffer, encoding: BufferEncoding, callback: WriteCallback): void {
    super._write(chunk, encoding, (error) => {
      if (!error) freeIfHandedOver(chunk);
      callback(error);
    });
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: WriteCallback): void {
    super._writev!(chunks, (error) => {
      if (!error) for (const { chunk } of chunks) freeIfHandedOver(chunk);
      callback(error);
    });
  }
}

/**
 * Comes right after a zlib stream whose output only ends up in a writer that frees handed-over
 * chunks: passes the chunks on, handing over each one that ends zlib's output buffer.
 */
export class ZlibOutputHandOver extends Transform {
  readonly #chunkSize: number;

  constructor(chunkSize: number) {
    super({ highWaterMark: chunkSize });
    this.#chunkSize = chunkSize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (endsZlibOutputBuffer(chunk, this.#chunkSize)) handOver(chunk);
    callback(null, chunk);
  }
}

/**
 * Writes `chunk` into `destination` and frees it once written, if it was handed over (a pipe's or
 * socket's write calls back once the bytes have left for the kernel, or have failed to).
 */
export function writeAndFree(destination: Writable, chunk: Buffer): boolean {
  return destination.write(chunk, () => freeIfHandedOver(chunk));
}
