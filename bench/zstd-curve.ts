/**
 * Compression level vs speed vs size on a sample of the reference dump, one core, in process
 * (node:zlib, the library the pipeline uses). This is what the default level was chosen from.
 */
import { openSync, readSync, closeSync } from 'node:fs';
import zlib from 'node:zlib';

export interface CurvePoint {
  codec: 'zstd' | 'gzip';
  level: number;
  /** Uncompressed MB per second, one core. */
  mbPerSecond: number;
  /** Compressed size / original size. */
  ratio: number;
}

/** Not -1: node:zlib takes a compression level parameter of -1 as "unset" and uses level 3. */
export const ZSTD_LEVELS = [-5, -3, 1, 2, 3, 4, 5, 6, 9] as const;
export const GZIP_LEVELS = [1, 6] as const;

function readSample(file: string, maxBytes: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(maxBytes);
    const read = readSync(fd, buffer, 0, maxBytes, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function compress(sample: Buffer, codec: 'zstd' | 'gzip', level: number): number {
  if (codec === 'gzip') return zlib.gzipSync(sample, { level }).length;
  return zlib.zstdCompressSync(sample, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level } }).length;
}

/** Times each level on the first `sampleBytes` of `dumpFile` (best of two runs). */
export function measureCurve(dumpFile: string, sampleBytes: number): { sampleBytes: number; points: CurvePoint[] } {
  const sample = readSample(dumpFile, sampleBytes);
  const settings: Array<['zstd' | 'gzip', number]> = [
    ...ZSTD_LEVELS.map((level) => ['zstd', level] as ['zstd', number]),
    ...GZIP_LEVELS.map((level) => ['gzip', level] as ['gzip', number]),
  ];
  const points = settings.map(([codec, level]) => {
    let best = Infinity;
    let size = 0;
    for (let run = 0; run < 2; run++) {
      const started = performance.now();
      size = compress(sample, codec, level);
      best = Math.min(best, performance.now() - started);
    }
    return { codec, level, mbPerSecond: sample.length / 1e6 / (best / 1000), ratio: size / sample.length };
  });
  return { sampleBytes: sample.length, points };
}
