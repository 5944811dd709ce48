import { createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncFile } from '../storage/local.ts';
import type { Compression } from '../config/schema.ts';
import { BlockCoalescer, createCompressor } from './compression.ts';
import { HashingTap } from './taps.ts';

export interface ArchiveOptions {
  compression: Compression;
  level?: number;
  signal?: AbortSignal;
  /** Called as dump bytes arrive (uncompressed count). */
  onProgress?: (uncompressedBytes: number) => void;
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

/** Where the archive's bytes go: a stream a store provides, made durable by `finish()`. */
export interface ArchiveSink {
  readonly stream: Writable;
  finish(): Promise<void>;
}

/** A local file as a sink (created or truncated, mode 0600, fsynced on finish). */
export function fileSink(destination: string): ArchiveSink {
  return {
    stream: createWriteStream(destination, { flags: 'w', mode: 0o600, highWaterMark: 1024 * 1024 }),
    finish: () => fsyncFile(destination),
  };
}

/**
 * One pass: dump → hash(content) → 1 MB blocks → compress → hash(file) → sink. No temporary uncompressed copy,
 * no second read to hash; pipeline() propagates back-pressure and the first error of any stage.
 * A file destination was reserved by the caller (created empty, mode 0600); the sink is finished
 * (fsynced, upload completed) before this resolves.
 */
export async function writeArchive(source: Readable, destination: string | ArchiveSink, options: ArchiveOptions): Promise<ArchiveStats> {
  const content = new HashingTap(options.onProgress);
  const file = new HashingTap();
  const sink = typeof destination === 'string' ? fileSink(destination) : destination;
  const output = sink.stream;
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  const compressor = createCompressor(options.compression, options.level);
  if (options.compression === 'none') await pipeline(source, content, compressor, file, output, pipelineOptions);
  else await pipeline(source, content, new BlockCoalescer(), compressor, file, output, pipelineOptions);
  await sink.finish();
  return {
    uncompressedBytes: content.bytes,
    sizeBytes: file.bytes,
    sha256: file.digest(),
    contentSha256: content.digest(),
  };
}
