import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeArchive } from '../../src/pipeline/archive.ts';
import { BlockCoalescer, BlockPool, createCompressor } from '../../src/pipeline/compression.ts';
import { DecodeCheck } from '../../src/pipeline/decode-check.ts';
import { startInPassVerification } from '../../src/pipeline/verify.ts';

const TRAILER = '\n--\n-- PostgreSQL database dump complete\n--\n';
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'faber-decode-check-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Text that compresses, with random parts so every block differs. */
function dumpLike(bytes: number): Buffer {
  const lines: string[] = ['-- PostgreSQL database dump\n'];
  for (let size = 0; size < bytes; size += 60)
    lines.push(`INSERT INTO t VALUES ('${randomBytes(12).toString('hex')}', 42);\n`);
  return Buffer.concat([Buffer.from(lines.join('')), Buffer.from(TRAILER)]);
}

/** Changes one byte of the n-th chunk that passes (a copy: the chunk itself may be a pooled block). */
function corruptChunk(n: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (seen++ !== n) return callback(null, chunk);
      const copy = Buffer.from(chunk);
      copy[Math.floor(copy.length / 2)] = (copy[Math.floor(copy.length / 2)] ?? 0) ^ 0x20;
      callback(null, copy);
    },
  });
}

async function runCheck(
  content: Buffer,
  compression: 'zstd' | 'gzip',
  corrupt: { beforeCompressor?: Transform; afterCompressor?: Transform },
): Promise<string | null> {
  const pool = new BlockPool(64 * 1024);
  const check = new DecodeCheck(compression, pool);
  const stages = [
    Readable.from([content]),
    new BlockCoalescer(pool),
    check.recorder,
    ...(corrupt.beforeCompressor ? [corrupt.beforeCompressor] : []),
    createCompressor(compression),
    ...(corrupt.afterCompressor ? [corrupt.afterCompressor] : []),
    check,
    new Writable({ write: (_chunk, _encoding, done) => done() }),
  ];
  await pipeline(stages);
  return check.problem;
}

describe.each(['zstd', 'gzip'] as const)('the decode check (%s) made while writing', (compression) => {
  it('passes a stream that decodes to the dump exactly', async () => {
    expect(await runCheck(dumpLike(700_000), compression, {})).toBeNull();
  });

  it('fails when the compressed bytes are damaged on their way', async () => {
    const problem = await runCheck(dumpLike(700_000), compression, { afterCompressor: corruptChunk(0) });
    expect(problem).toMatch(/does not decode|decodes to other bytes|fewer|more bytes/);
  });

  it('fails when the compressor was given other bytes than the dump produced', async () => {
    const problem = await runCheck(dumpLike(700_000), compression, { beforeCompressor: corruptChunk(3) });
    expect(problem).toMatch(/decodes to other bytes than the dump produced/);
  });
});

describe('in-pass verification of a written backup', () => {
  async function written(name: string, content: Buffer) {
    const file = path.join(work, name);
    await (await open(file, 'wx', 0o600)).close();
    const inPass = startInPassVerification({
      provider: 'postgresql',
      format: 'sql',
      compression: 'zstd',
      env: process.env,
    });
    const stats = await writeArchive(Readable.from([content]), file, { compression: 'zstd', contentTaps: inPass.taps });
    return { file, inPass, stats };
  }

  it('records that every byte was decoded and compared, and passes the stored file', async () => {
    const { file, inPass, stats } = await written('good.sql.zst', dumpLike(3_000_000));
    expect(stats.decodeCheck).toEqual({ checked: true, problem: null });
    const report = await inPass.finish(file, stats);
    expect(report.problems).toEqual([]);
    expect(report.checks.join('\n')).toMatch(
      /file checksum \(sha256\) matches[\s\S]*zstd stream decodes to the dump's bytes[\s\S]*trailer present/,
    );
    expect(report.passed).toBe(true);
  });

  it('fails when the stored file differs from the bytes written (one byte flipped on disk)', async () => {
    const { file, inPass, stats } = await written('flipped.sql.zst', dumpLike(1_000_000));
    const onDisk = await readFile(file);
    onDisk[onDisk.length >> 1] = (onDisk[onDisk.length >> 1] ?? 0) ^ 0x01;
    await writeFile(file, onDisk);
    const report = await inPass.finish(file, stats);
    expect(report.passed).toBe(false);
    expect(report.problems.join()).toMatch(/file checksum \(sha256\) mismatch/);
  });

  it('fails a dump without its completion trailer', async () => {
    const { file, inPass, stats } = await written(
      'cut.sql.zst',
      Buffer.from('-- PostgreSQL database dump\nCREATE TABLE t();\n'),
    );
    const report = await inPass.finish(file, stats);
    expect(report.passed).toBe(false);
    expect(report.problems.join()).toMatch(/trailer/);
  });
});
