import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingTap } from './taps.ts';

/** SHA-256 and size of every file in a (flat) pg_dump directory-format backup. */
export async function hashDirectory(
  directory: string,
): Promise<{ checksums: Record<string, string>; sizes: Record<string, number> }> {
  const checksums: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  for (const name of (await readdir(directory)).sort()) {
    const tap = new HashingTap();
    await pipeline(
      createReadStream(path.join(directory, name), { highWaterMark: 1024 * 1024 }),
      tap,
      new Writable({ write: (_chunk, _encoding, done) => done() }),
    );
    checksums[name] = tap.digest();
    sizes[name] = tap.bytes;
  }
  return { checksums, sizes };
}
