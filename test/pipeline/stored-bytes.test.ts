import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStoredBytes } from '../../src/pipeline/verify.ts';

const MIB = 1024 * 1024;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'faber-stored-bytes-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function stored(name: string, bytes: Buffer): Promise<string> {
  const file = path.join(work, name);
  await writeFile(file, bytes);
  return file;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('verifyStoredBytes (the stored file read back in 1 MiB blocks, two at a time)', () => {
  it.each([
    ['one byte', 1],
    ['exactly two blocks', 2 * MIB],
    ['two blocks and one byte', 2 * MIB + 1],
    ['three blocks less one byte', 3 * MIB - 1],
  ])('hashes every byte of a file of %s', async (_name, size) => {
    const bytes = randomBytes(size);
    const file = await stored(`ok-${size}.bin`, bytes);
    const report = await verifyStoredBytes({ path: file, expected: { sizeBytes: size, sha256: sha256(bytes) } });
    expect(report.problems).toEqual([]);
    expect(report.passed).toBe(true);
  });

  it('finds one changed byte in the last block', async () => {
    const bytes = randomBytes(2 * MIB + 10);
    const expected = sha256(bytes);
    bytes[2 * MIB + 5] = bytes[2 * MIB + 5]! ^ 0xff;
    const file = await stored('changed.bin', bytes);
    const report = await verifyStoredBytes({ path: file, expected: { sizeBytes: bytes.length, sha256: expected } });
    expect(report.passed).toBe(false);
    expect(report.problems.join('\n')).toMatch(/file checksum \(sha256\) mismatch/);
  });

  it('stops when the signal is aborted and reports the file unreadable', async () => {
    const bytes = randomBytes(3 * MIB);
    const file = await stored('aborted.bin', bytes);
    const report = await verifyStoredBytes({
      path: file,
      expected: { sizeBytes: bytes.length, sha256: sha256(bytes) },
      signal: AbortSignal.abort(),
    });
    expect(report.passed).toBe(false);
    expect(report.file_readable).toBe(false);
  });
});
