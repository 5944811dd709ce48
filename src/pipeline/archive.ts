import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncFile } from '../storage/local.ts';
import type { Compression } from '../config/schema.ts';
import { BlockReader } from './channel.ts';
import { BlockCoalescer, BlockPool, createCompressor } from './compression.ts';
import { DecodeCheck } from './decode-check.ts';
import { createEncryptStage, type PreparedEncryption } from './encryption.ts';
import { FreeingWriteStream } from '../util/spent-buffers.ts';
import { HashingTap } from './taps.ts';

export interface ArchiveOptions {
  compression: Compression;
  level?: number;
  signal?: AbortSignal;
  /** Called as dump bytes arrive (uncompressed count). */
  onProgress?: (uncompressedBytes: number) => void;
  /** Stages that see the dump's bytes (before compression) on their way, e.g. format checks. */
  contentTaps?: Transform[];
  /**
   * Encrypt with age (prepareEncryption), after compression and after the decode check: every
   * check of the write sees the plaintext, the file gets only ciphertext.
   */
  encryption?: PreparedEncryption;
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
  /**
   * The decode of the compressed stream made as it was written: `checked` false when there was
   * nothing to decode (no compression); `problem` null when it decoded to the dump's bytes exactly.
   */
  decodeCheck: { checked: boolean; problem: string | null };
}

/** Where the archive's bytes go: a stream a store provides, made durable by `finish()`. */
export interface ArchiveSink {
  readonly stream: Writable;
  finish(): Promise<void>;
}

/** A local file as a sink (created or truncated, mode 0600, fsynced on finish). */
export function fileSink(destination: string): ArchiveSink {
  return {
    stream: new FreeingWriteStream(destination, { flags: 'w', mode: 0o600, highWaterMark: 1024 * 1024 }),
    finish: () => fsyncFile(destination),
  };
}

/**
 * One pass: dump → 1 MB blocks → hash(content) → compress → decode check → hash(file) → file. No
 * temporary uncompressed copy, no second read to hash or to decode; pipeline() propagates
 * back-pressure and the first error of any stage. The blocks come from a small pool and return to
 * it once the decode check has compared them (see DecodeCheck).
 * A file destination was reserved by the caller (created empty, mode 0600); the sink is finished
 * (fsynced, upload completed) before this resolves.
 */
export async function writeArchive(
  source: Readable,
  destination: string | ArchiveSink,
  options: ArchiveOptions,
): Promise<ArchiveStats> {
  const content = new HashingTap(options.onProgress);
  const file = new HashingTap();
  const sink = typeof destination === 'string' ? fileSink(destination) : destination;
  const output = sink.stream;
  const pipelineOptions = options.signal ? { signal: options.signal } : {};
  const taps = options.contentTaps ?? [];
  // Made synchronously: the pipeline must attach to the dump's output at once.
  const encrypt = options.encryption ? [createEncryptStage(options.encryption)] : [];
  let decodeCheck: ArchiveStats['decodeCheck'] = { checked: false, problem: null };
  if (options.compression === 'none')
    await pipeline([source, content, ...taps, ...encrypt, file, output], pipelineOptions);
  else {
    // A BlockReader already delivers pooled blocks; anything else is cut into blocks here.
    const pool = source instanceof BlockReader ? source.pool : new BlockPool();
    const blocks = source instanceof BlockReader ? [source] : [source, new BlockCoalescer(pool)];
    const check = new DecodeCheck(options.compression, pool);
    const compressor = createCompressor(options.compression, options.level);
    try {
      await pipeline(
        [...blocks, content, ...taps, check.recorder, compressor, check, ...encrypt, file, output],
        pipelineOptions,
      );
    } finally {
      // The dump is through: the spare blocks are freed now, not at V8's next collection (the
      // stored file is read back next; from S3, in HTTP buffers that pile up until one).
      pool.trim();
    }
    decodeCheck = { checked: true, problem: check.problem ?? null };
  }
  await sink.finish();
  return {
    uncompressedBytes: content.bytes,
    sizeBytes: file.bytes,
    sha256: file.digest(),
    contentSha256: content.digest(),
    decodeCheck,
  };
}
