import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockPool } from '../../src/pipeline/compression.ts';
import { FileBlockReader } from '../../src/pipeline/file-blocks.ts';

let work: string;
let file: string;
const content = randomBytes(10_000);

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'faber-file-blocks-'));
  file = path.join(work, 'data.bin');
  await writeFile(file, content);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('FileBlockReader', () => {
  it('delivers the file in full blocks of the pool (the last one shorter) and closes the file at the end', async () => {
    const pool = new BlockPool(4096);
    const handle = await open(file, 'r');
    const blocks: Buffer[] = [];
    for await (const block of new FileBlockReader(handle, pool)) blocks.push(Buffer.from(block as Buffer));
    expect(blocks.map((block) => block.length)).toEqual([4096, 4096, 10_000 - 8192]);
    expect(Buffer.concat(blocks).equals(content)).toBe(true);
    await expect(handle.stat()).rejects.toThrow(/closed/);
  });

  it('closes the file when destroyed before the end', async () => {
    const pool = new BlockPool(4096);
    const handle = await open(file, 'r');
    const reader = new FileBlockReader(handle, pool);
    const first = (await reader[Symbol.asyncIterator]().next()).value as Buffer;
    expect(first.equals(content.subarray(0, 4096))).toBe(true);
    reader.destroy();
    await new Promise((resolve) => reader.once('close', resolve));
    await expect(handle.stat()).rejects.toThrow(/closed/);
  });
});
