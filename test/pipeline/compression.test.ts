import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { BlockCoalescer, BlockPool } from '../../src/pipeline/compression.ts';

async function blocksOf(chunks: Buffer[], blockSize: number): Promise<Buffer[]> {
  const blocks: Buffer[] = [];
  await pipeline(
    Readable.from(chunks),
    new BlockCoalescer(blockSize),
    new Writable({ write: (block: Buffer, _encoding, done) => (blocks.push(block), done()) }),
  );
  return blocks;
}

describe('BlockCoalescer', () => {
  it.each([
    { name: 'small chunks', chunkSizes: Array.from({ length: 500 }, (_, i) => 1 + ((i * 37) % 300)) },
    { name: 'chunks larger than a block', chunkSizes: [5000, 1, 12_000, 4096, 4095] },
    { name: 'an exact multiple of the block size', chunkSizes: [4096, 2048, 2048] },
    { name: 'nothing', chunkSizes: [] },
  ])('re-cuts $name into full blocks and a shorter last one, bytes unchanged', async ({ chunkSizes }) => {
    const chunks = chunkSizes.map((size) => randomBytes(size));
    const input = Buffer.concat(chunks);
    const blocks = await blocksOf(chunks, 4096);
    expect(Buffer.concat(blocks).equals(input)).toBe(true);
    expect(blocks.slice(0, -1).every((block) => block.length === 4096)).toBe(true);
    expect(blocks.length).toBe(Math.ceil(input.length / 4096));
  });

  it('never hands out a block it is still writing into', async () => {
    const chunks = Array.from({ length: 20 }, (_, i) => Buffer.alloc(1000, i));
    const blocks = await blocksOf(chunks, 3000);
    const buffers = new Set(blocks.map((block) => block.buffer));
    expect(buffers.size).toBe(blocks.length);
    expect(Buffer.concat(blocks).equals(Buffer.concat(chunks))).toBe(true);
  });
});

describe('BlockPool', () => {
  it('reuses the blocks given back, frees them on trim(), and makes new ones after', () => {
    const pool = new BlockPool(1024);
    const first = pool.take();
    pool.give(first);
    expect(pool.take().buffer).toBe(first.buffer);
    pool.give(first);
    pool.trim();
    expect(first.buffer.byteLength).toBe(0);
    const next = pool.take();
    expect(next.length).toBe(1024);
    expect(next.buffer).not.toBe(first.buffer);
  });
});
