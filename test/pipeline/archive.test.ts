import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { writeArchive } from '../../src/pipeline/archive.ts';
import { openDecodedStream, verifyBackupFile } from '../../src/pipeline/verify.ts';
import type { Compression } from '../../src/config/schema.ts';
import { tempDirectory } from '../support/temp.ts';

const TRAILER = '\n--\n-- PostgreSQL database dump complete\n--\n';

function dumpLike(bytes: number): Buffer {
  const body = Buffer.from(
    Array.from(
      { length: Math.ceil(bytes / 64) },
      (_, i) => `INSERT INTO t VALUES (${i}, '${randomBytes(12).toString('hex')}');\n`,
    ).join(''),
  );
  return Buffer.concat([Buffer.from('-- PostgreSQL database dump\n'), body, Buffer.from(TRAILER)]);
}

async function reserve(file: string): Promise<void> {
  await (await open(file, 'wx', 0o600)).close();
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each(['zstd', 'gzip', 'none'] as Compression[])('archive with %s', (compression) => {
  it('writes once, hashes what is on disk, decodes to the same bytes and verifies', async () => {
    const dir = await tempDirectory('faber-archive-');
    const file = path.join(dir, 'b.sql.partial');
    const content = dumpLike(3 * 1024 * 1024);
    await reserve(file);
    const stats = await writeArchive(Readable.from([content.subarray(0, 1000), content.subarray(1000)]), file, {
      compression,
    });
    const onDisk = await readFile(file);
    expect(stats.sizeBytes).toBe(onDisk.length);
    expect(stats.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'));
    expect(stats.uncompressedBytes).toBe(content.length);
    expect(stats.contentSha256).toBe(createHash('sha256').update(content).digest('hex'));
    expect(((await stat(file)).mode & 0o777).toString(8)).toBe('600');
    if (compression !== 'none') expect(onDisk.length).toBeLessThan(content.length * 0.7);
    const decoded = openDecodedStream(file, compression);
    expect((await collect(decoded.stream)).equals(content)).toBe(true);
    expect(decoded.digests()).toEqual({
      fileSha256: stats.sha256,
      fileBytes: stats.sizeBytes,
      contentSha256: stats.contentSha256,
      contentBytes: content.length,
    });

    const expected = { sizeBytes: stats.sizeBytes, sha256: stats.sha256, contentSha256: stats.contentSha256 };
    const good = await verifyBackupFile({
      path: file,
      provider: 'postgresql',
      format: 'sql',
      compression,
      expected,
      env: process.env,
    });
    expect(good.problems).toEqual([]);
    expect(good.passed).toBe(true);

    // A single flipped byte anywhere must fail verification.
    const flipped = Buffer.from(onDisk);
    const at = Math.floor(flipped.length / 2);
    flipped[at] = (flipped[at] ?? 0) ^ 0x01;
    await writeFile(file, flipped);
    const bad = await verifyBackupFile({
      path: file,
      provider: 'postgresql',
      format: 'sql',
      compression,
      expected,
      env: process.env,
    });
    expect(bad.passed).toBe(false);

    // A truncated file must fail too.
    await writeFile(file, onDisk.subarray(0, onDisk.length - 100));
    const cut = await verifyBackupFile({
      path: file,
      provider: 'postgresql',
      format: 'sql',
      compression,
      expected,
      env: process.env,
    });
    expect(cut.passed).toBe(false);
  });
});

describe.each(['zstd', 'gzip'] as Compression[])('archive with %s of a dump that compresses poorly', (compression) => {
  it('writes every byte though the spent buffers are freed as soon as they are written (many output buffers of zlib)', async () => {
    const dir = await tempDirectory('faber-archive-');
    const file = path.join(dir, 'b.sql.partial');
    // Hex text: a third of it compresses away, so the compressed stream spans many of zlib's 1 MB output buffers.
    const content = Buffer.concat([Buffer.from(randomBytes(12 * 1024 * 1024).toString('hex')), Buffer.from(TRAILER)]);
    await reserve(file);
    const pieces = Array.from({ length: Math.ceil(content.length / 300_000) }, (_, i) =>
      content.subarray(i * 300_000, (i + 1) * 300_000),
    );
    const stats = await writeArchive(Readable.from(pieces), file, { compression });
    expect(stats.decodeCheck).toEqual({ checked: true, problem: null });
    const onDisk = await readFile(file);
    expect(onDisk.length).toBeGreaterThan(8 * 1024 * 1024);
    expect(stats.sha256).toBe(createHash('sha256').update(onDisk).digest('hex'));
    const decoded = compression === 'zstd' ? zstdDecompressSync(onDisk) : gunzipSync(onDisk);
    expect(decoded.equals(content)).toBe(true);
  });
});

describe('verification of dumps cut short', () => {
  it('fails a dump without its completion trailer even when checksums match', async () => {
    const dir = await tempDirectory('faber-archive-');
    const file = path.join(dir, 'b.sql.zst.partial');
    await reserve(file);
    const stats = await writeArchive(
      Readable.from([Buffer.from('-- PostgreSQL database dump\nCREATE TABLE t();\n')]),
      file,
      { compression: 'zstd' },
    );
    const report = await verifyBackupFile({
      path: file,
      provider: 'postgresql',
      format: 'sql',
      compression: 'zstd',
      expected: { sizeBytes: stats.sizeBytes, sha256: stats.sha256 },
      env: process.env,
    });
    expect(report.passed).toBe(false);
    expect(report.problems.join()).toMatch(/trailer/);
  });

  it('reports a missing file', async () => {
    const report = await verifyBackupFile({
      path: '/nonexistent/x.sql',
      provider: 'mysql',
      format: 'sql',
      compression: 'none',
      expected: { sizeBytes: 1, sha256: 'a'.repeat(64) },
      env: process.env,
    });
    expect(report).toMatchObject({ passed: false, file_exists: false });
  });
});
