import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { EdgeTap, HashingTap } from '../../src/pipeline/taps.ts';

/** Splits `data` into chunks of pseudo-random sizes between 1 byte and `maxChunk`. */
function chunked(data: Buffer, maxChunk: number, seed: number): Buffer[] {
  const chunks: Buffer[] = [];
  let state = seed;
  for (let at = 0; at < data.length;) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const size = 1 + (state % maxChunk);
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

async function through(chunks: Buffer[], tap: HashingTap | EdgeTap): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    tap,
    new Writable({ write: (chunk: Buffer, _encoding, done) => (out.push(chunk), done()) }),
  );
  return Buffer.concat(out);
}

describe('EdgeTap', () => {
  it.each([
    { size: 3 * 1024 * 1024, maxChunk: 300 * 1024, keep: 64 * 1024 },
    { size: 200_000, maxChunk: 7, keep: 4096 },
    { size: 100, maxChunk: 10, keep: 4096 },
    { size: 0, maxChunk: 10, keep: 16 },
  ])(
    'keeps the first and last $keep bytes of $size bytes in chunks up to $maxChunk',
    async ({ size, maxChunk, keep }) => {
      const data = randomBytes(size);
      const edges = new EdgeTap(keep);
      const passed = await through(chunked(data, maxChunk, size + keep), edges);
      expect(passed.equals(data)).toBe(true);
      expect(edges.head.equals(data.subarray(0, keep))).toBe(true);
      expect(edges.tail.equals(data.subarray(Math.max(0, size - keep)))).toBe(true);
    },
  );
});

describe('HashingTap', () => {
  it('passes bytes through unchanged and hashes and counts them', async () => {
    const data = randomBytes(20 * 1024 * 1024 + 17);
    const progress: number[] = [];
    const tap = new HashingTap((total) => progress.push(total));
    const passed = await through(chunked(data, 1024 * 1024, 7), tap);
    expect(passed.equals(data)).toBe(true);
    expect(tap.bytes).toBe(data.length);
    expect(tap.digest()).toBe(createHash('sha256').update(data).digest('hex'));
    expect(progress.at(-1)).toBe(data.length);
  });
});
