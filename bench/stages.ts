/**
 * Where a backup's CPU goes: each stage of the pipeline replayed alone over the raw dump that
 * pg_dump -f wrote, one after the other in this process, measured in CPU seconds of the whole
 * process (zlib's thread-pool work included). The stages run concurrently in a backup; here they
 * are apart, so each figure is that stage's own cost. The dump's own CPU (pg_dump, and the
 * server backend that feeds it) comes from the raw case.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';

export interface StageCosts {
  dumpBytes: number;
  compressedBytes: number;
  /** CPU seconds per stage. */
  seconds: { read: number; contentHash: number; compress: number; decodeAndCompare: number; fileHash: number };
}

const BLOCK = 1024 * 1024;

function cpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function forEachBlock(file: string, visit: (block: Buffer) => void): number {
  const fd = openSync(file, 'r');
  const buffer = Buffer.allocUnsafe(BLOCK);
  let total = 0;
  try {
    for (let read = readSync(fd, buffer); read > 0; read = readSync(fd, buffer)) {
      visit(buffer.subarray(0, read));
      total += read;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

async function timed<T>(work: () => T | Promise<T>): Promise<[T, number]> {
  const started = cpuSeconds();
  const result = await work();
  return [result, cpuSeconds() - started];
}

function* blocksOf(file: string): Generator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      // A fresh block each time: zlib reads it after write() returns.
      const block = Buffer.allocUnsafe(BLOCK);
      const read = readSync(fd, block);
      if (read === 0) return;
      yield block.subarray(0, read);
    }
  } finally {
    closeSync(fd);
  }
}

/** Streams `blocks` through `transform`, calling `onOutput` for each output chunk. */
async function streamThrough(
  blocks: Iterable<Buffer>,
  transform: zlib.ZstdCompress | zlib.ZstdDecompress,
  onOutput: (chunk: Buffer) => void,
): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    transform.on('data', onOutput);
    transform.once('end', resolve);
    transform.once('error', reject);
  });
  for (const block of blocks) {
    if (!transform.write(block)) await new Promise((resolve) => transform.once('drain', resolve));
  }
  transform.end();
  await done;
}

/** Measures each stage on `dumpFile` (zstd at `level`, as the backup runs it). */
export async function measureStages(dumpFile: string, scratchFile: string, level: number): Promise<StageCosts> {
  const [dumpBytes, read] = await timed(() => forEachBlock(dumpFile, () => undefined));
  const [, contentHash] = await timed(() => {
    const hash = createHash('sha256');
    forEachBlock(dumpFile, (block) => hash.update(block));
    return hash.digest('hex');
  });
  const output = openSync(scratchFile, 'w');
  let compressedBytes = 0;
  const compressor = zlib.createZstdCompress({
    chunkSize: BLOCK,
    params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 },
  });
  const [, compress] = await timed(() =>
    streamThrough(blocksOf(dumpFile), compressor, (chunk) => {
      compressedBytes += chunk.length;
      writeSync(output, chunk);
    }),
  );
  closeSync(output);
  const original = openSync(dumpFile, 'r');
  const expected = Buffer.allocUnsafe(BLOCK);
  let mismatch = false;
  const [, decodeAndCompare] = await timed(() =>
    streamThrough(blocksOf(scratchFile), zlib.createZstdDecompress({ chunkSize: BLOCK }), (chunk) => {
      const got = readSync(original, expected, 0, chunk.length, null);
      if (got !== chunk.length || !chunk.equals(expected.subarray(0, got))) mismatch = true;
    }),
  );
  closeSync(original);
  if (mismatch) throw new Error('the stage replay decoded other bytes than the dump');
  const [, fileHash] = await timed(() => {
    const hash = createHash('sha256');
    forEachBlock(scratchFile, (block) => hash.update(block));
    return hash.digest('hex');
  });
  rmSync(scratchFile, { force: true });
  return { dumpBytes, compressedBytes, seconds: { read, contentHash, compress, decodeAndCompare, fileHash } };
}

export function stagesTable(costs: StageCosts, dumpCpuSeconds: number | null): string {
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;
  const rows: Array<[string, string, number | null]> = [
    ['dump (pg_dump -f, the tool alone, user+sys)', mb(costs.dumpBytes), dumpCpuSeconds],
    [
      'read the dump from the page cache (1 MB blocks; part of every row below)',
      mb(costs.dumpBytes),
      costs.seconds.read,
    ],
    ['content SHA-256 (once per backup)', mb(costs.dumpBytes), costs.seconds.contentHash],
    ['compress (zstd, with writing the output)', mb(costs.dumpBytes), costs.seconds.compress],
    [
      'verify: decode + compare with the dump (in the same pass as the write)',
      mb(costs.compressedBytes),
      costs.seconds.decodeAndCompare,
    ],
    [
      'file SHA-256 (twice per backup: as written, and re-reading the stored file)',
      mb(costs.compressedBytes),
      costs.seconds.fileHash,
    ],
  ];
  const lines = ['| stage | bytes | CPU s (one pass) |', '|:---|---:|---:|'];
  for (const [stage, bytes, seconds] of rows)
    lines.push(`| ${stage} | ${bytes} | ${seconds === null ? 'n/a' : seconds.toFixed(2)} |`);
  return lines.join('\n');
}
