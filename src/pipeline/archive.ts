import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  if (options.compression === 'none') await pipeline(source, content, compressor, file, output, pipelineOptions);
  else await pipeline(source, content, new BlockCoalescer(), compressor, file, output, pipelineOptions);
  await fsyncFile(destination);
  return {
    uncompressedBytes: content.bytes,
    sizeBytes: file.bytes,
    sha256: file.digest(),
    contentSha256: content.digest(),
  };
}

export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
