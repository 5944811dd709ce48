import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough, Transform, type Duplex, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../config/schema.ts';
import { BlockCoalescer, createCompressor } from './compression.ts';
import { createEncryptStage } from './encryption.ts';
import { HashingTap } from './taps.ts';

export interface ArchiveOptions {
  compression: Compression;
  level?: number;
  signal?: AbortSignal;
  /** Called as dump bytes arrive (uncompressed count). */
  onProgress?: (uncompressedBytes: number) => void;
  /** Encrypt the compressed bytes for these age recipients; the plaintext is checked in the same pass. */
  encryption?: ArchiveEncryption;
}

export interface ArchiveEncryption {
  recipients: readonly string[];
  /**
   * Reads a copy of the compressed plaintext as it goes by, before it is encrypted (the backup has
   * no key to read the file back). Its back-pressure paces the backup; writeArchive waits for it.
   */
  inspectPlaintext: (compressed: Readable) => Promise<unknown>;
}

export interface ArchiveStats {
  /** Bytes the dump produced. */
  uncompressedBytes: number;
  /** Bytes written to disk. */
  sizeBytes: number;
  /** SHA-256 of the bytes on disk. */
  sha256: string;
  /** SHA-256 of the dump before compression. */
  contentSha256: string;
}

/**
 * One pass: dump → hash(content) → 1 MB blocks → compress → hash(file) → file. No temporary uncompressed copy,
 * no second read to hash; pipeline() propagates back-pressure and the first error of any stage.
 * The destination was reserved by the caller (created empty, mode 0600); it is fsynced before this resolves.
 */
export async function writeArchive(source: Readable, destination: string, options: ArchiveOptions): Promise<ArchiveStats> {
  const content = new HashingTap(options.onProgress);
  const file = new HashingTap();
  const output = createWriteStream(destination, { flags: 'w', mode: 0o600, highWaterMark: 1024 * 1024 });
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  const compressor = createCompressor(options.compression, options.level);
  const stages: Duplex[] = options.compression === 'none' ? [compressor] : [new BlockCoalescer(), compressor];
  if (options.encryption) {
    const plaintext = new PassThrough({ highWaterMark: 1024 * 1024 });
    // Nothing here may wait before the pipeline is attached: a dump tool's output not read before it exits is lost.
    const inspection = options.encryption.inspectPlaintext(plaintext);
    stages.push(new TeeTap(plaintext), createEncryptStage(options.encryption.recipients));
    try {
      await pipeline([source, content, ...stages, file, output], pipelineOptions);
    } catch (error) {
      plaintext.destroy();
      await inspection.catch(() => undefined);
      throw error;
    }
    await inspection;
  } else await pipeline([source, content, ...stages, file, output], pipelineOptions);
  await fsyncFile(destination);
  return {
    uncompressedBytes: content.bytes,
    sizeBytes: file.bytes,
    sha256: file.digest(),
    contentSha256: content.digest(),
  };
}

/** Passes bytes on and writes the same chunks to a second stream, waiting for whichever is slower. */
class TeeTap extends Transform {
  readonly #branch: Writable;

  constructor(branch: Writable) {
    super({ highWaterMark: 1024 * 1024 });
    this.#branch = branch;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.push(chunk);
    // A branch that stopped (its check failed) no longer holds the backup up; its report says why.
    if (this.#branch.destroyed || this.#branch.write(chunk)) return callback();
    const resume = () => {
      this.#branch.off('drain', resume);
      this.#branch.off('close', resume);
      callback();
    };
    this.#branch.once('drain', resume);
    this.#branch.once('close', resume);
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#branch.destroyed) this.#branch.end();
    callback();
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
