import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Compression } from '../config/schema.ts';
import { createCompressor } from './compression.ts';
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
 * One pass: dump → hash(content) → compress → hash(file) → file. No temporary uncompressed copy,
 * no second read to hash; pipeline() propagates back-pressure and the first error of any stage.
 * The destination was reserved by the caller (created empty, mode 0600); it is fsynced before this resolves.
 */
export async function writeArchive(source: Readable, destination: string, options: ArchiveOptions): Promise<ArchiveStats> {
  const content = new HashingTap(options.onProgress);
  const file = new HashingTap();
  const output = createWriteStream(destination, { flags: 'w', mode: 0o600, highWaterMark: 1024 * 1024 });
  await pipeline(source, content, createCompressor(options.compression, options.level), file, output, {
    ...(options.signal ? { signal: options.signal } : {}),
  });
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
