import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecompressor } from '../../src/pipeline/compression.ts';
import { FileFeed } from '../../src/pipeline/file-feed.ts';

let directory = '';
beforeAll(async () => {
  directory = await mkdtemp(path.join(tmpdir(), 'faber-feed-'));
});
afterAll(() => rm(directory, { recursive: true, force: true }));

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    stream,
    new Writable({ write: (chunk: Buffer, _encoding, done) => (chunks.push(Buffer.from(chunk)), done()) }),
  );
  return Buffer.concat(chunks);
}

describe('FileFeed', () => {
  // Random bytes barely compress: a 3 MB file needs many more reads than the feed has buffers, so each is reused.
  it.each([
    ['zstd, buffers reused', 'zstd' as const, true],
    ['none, fresh buffers into a PassThrough', 'none' as const, false],
  ])(
    '%s: the sink gets every byte in order, and the file hash and size are those of the file',
    async (_name, compression, reuse) => {
      const content = Buffer.concat([randomBytes(3 * 1024 * 1024), Buffer.alloc(2 * 1024 * 1024, 'row\n')]);
      const stored = compression === 'zstd' ? zlib.zstdCompressSync(content) : content;
      const file = path.join(directory, `${compression}.bin`);
      await writeFile(file, stored);
      const sink = compression === 'zstd' ? createDecompressor('zstd') : new PassThrough();
      const feed = new FileFeed(file, sink, { reuse });
      const decoded = await collect(sink);
      await feed.done;
      expect(decoded.equals(content)).toBe(true);
      expect(feed.bytes).toBe(stored.length);
      expect(feed.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
      expect(feed.readError).toBeUndefined();
    },
  );

  it('a file that cannot be read fails the sink with the read error', async () => {
    const sink = createDecompressor('zstd');
    const feed = new FileFeed(path.join(directory, 'missing.zst'), sink, { reuse: true });
    await expect(collect(sink)).rejects.toThrow(/ENOENT/);
    await feed.done;
    expect(feed.readError?.message).toMatch(/ENOENT/);
    expect(feed.sha256).toBeUndefined();
  });

  it('stops reading once the sink is destroyed (a decode error downstream), without hanging', async () => {
    const file = path.join(directory, 'big.zst');
    await writeFile(file, zlib.zstdCompressSync(randomBytes(4 * 1024 * 1024)));
    const sink = createDecompressor('zstd');
    const feed = new FileFeed(file, sink, { reuse: true });
    sink.once('data', () => sink.destroy(new Error('stop')));
    await expect(collect(sink)).rejects.toThrow('stop');
    await feed.done;
    expect(feed.sha256).toBeUndefined();
    expect(feed.readError).toBeUndefined();
  });
});
