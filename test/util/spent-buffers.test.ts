import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  FreeingWriteStream,
  endsZlibOutputBuffer,
  freeBuffer,
  freeIfHandedOver,
  handOver,
} from '../../src/util/spent-buffers.ts';
import { tempDirectory } from '../support/temp.ts';

const MIB = 1024 * 1024;

async function writeAll(file: string, chunks: Buffer[]): Promise<void> {
  const stream = new FreeingWriteStream(file, { flags: 'w', mode: 0o600, highWaterMark: MIB });
  // Once the file is open, each chunk is written on its own (before, they would be gathered into one writev).
  await once(stream, 'ready');
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await finished(stream);
}

describe('spent buffers', () => {
  it('a handed-over chunk frees its buffer once written, after the earlier chunks of that buffer were written whole', async () => {
    const file = path.join(await tempDirectory('faber-spent-'), 'out');
    const buffer = randomBytes(MIB);
    const expected = Buffer.from(buffer);
    const first = buffer.subarray(0, 600_000);
    const last = buffer.subarray(600_000);
    // Handed over before the first chunk is even written: only the last chunk's write may free the buffer.
    handOver(last);
    await writeAll(file, [first, last]);
    expect((await readFile(file)).equals(expected)).toBe(true);
    expect(buffer.buffer.byteLength).toBe(0);
  }, 10_000);

  it('leaves alone chunks that were not handed over, and other views of a handed-over buffer', async () => {
    const file = path.join(await tempDirectory('faber-spent-'), 'out');
    const buffer = randomBytes(MIB);
    handOver(buffer.subarray(0, 10));
    await writeAll(file, [buffer.subarray(0, 10), buffer.subarray(10)]);
    expect(buffer.buffer.byteLength).toBe(MIB);
    const plain = randomBytes(1000);
    freeIfHandedOver(plain);
    expect(plain.length).toBe(1000);
  }, 10_000);

  it('frees a buffer at once: every view of it reads as empty', () => {
    const buffer = Buffer.allocUnsafeSlow(MIB);
    const view = buffer.subarray(100, 200);
    freeBuffer(view);
    expect(buffer.length).toBe(0);
    expect(view.length).toBe(0);
  });

  it('leaves a buffer that cannot be detached to the collector, without failing', () => {
    // WebAssembly's memory cannot be detached (this project's lib has no WebAssembly types).
    const wasm = (
      globalThis as unknown as { WebAssembly: { Memory: new (pages: { initial: number }) => { buffer: ArrayBuffer } } }
    ).WebAssembly;
    const memory = new wasm.Memory({ initial: 1 });
    const view = Buffer.from(memory.buffer);
    expect(() => freeBuffer(view)).not.toThrow();
    expect(view.length).toBe(64 * 1024);
  });

  it("tells which of node:zlib's output chunks end its output buffer: after one, zlib writes into a new buffer", async () => {
    const compressor = zlib.createZstdCompress({ chunkSize: MIB });
    const chunks: Buffer[] = [];
    compressor.on('data', (chunk: Buffer) => chunks.push(chunk));
    // Random bytes do not compress: 5 MiB written in 700 KB pieces fill several output buffers.
    const input = randomBytes(5 * MIB);
    for (let at = 0; at < input.length; at += 700_000) compressor.write(input.subarray(at, at + 700_000));
    compressor.end();
    await finished(compressor);
    const ending = chunks.filter((chunk) => endsZlibOutputBuffer(chunk, MIB));
    expect(ending.length).toBeGreaterThanOrEqual(4);
    chunks.forEach((chunk, index) => {
      const next = chunks[index + 1];
      if (next && endsZlibOutputBuffer(chunk, MIB)) expect(next.buffer).not.toBe(chunk.buffer);
      if (next && !endsZlibOutputBuffer(chunk, MIB) && next.buffer === chunk.buffer)
        expect(next.byteOffset).toBe(chunk.byteOffset + chunk.length);
    });
    expect(zlib.zstdDecompressSync(Buffer.concat(chunks)).equals(input)).toBe(true);
  });
});
