import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../../src/handlers/tools.ts';
import { openBlockChannel } from '../../src/pipeline/channel.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'faber-channel-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('a dump tool writing into a block channel', () => {
  it('delivers every byte, in the order written, as full pooled blocks and a shorter last one', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 12_345);
    const file = path.join(work, 'dump.bin');
    await writeFile(file, content);
    const channel = await openBlockChannel();
    expect(channel).toBeDefined();
    const run = runTool({ role: 'pg_dump', name: 'cat', path: '/bin/cat' }, [file], {
      env: { PATH: process.env.PATH },
      signal: new AbortController().signal,
      secrets: [],
      failureCode: 'BACKUP_FAILED',
      stdout: channel!,
    });
    const blocks: Buffer[] = [];
    for await (const block of run.stdout!) blocks.push(Buffer.from(block as Buffer));
    await run.done;
    expect(Buffer.concat(blocks).equals(content)).toBe(true);
    expect(blocks.slice(0, -1).every((block) => block.length === channel!.stream.pool.blockSize)).toBe(true);
  });

  it("gives the tool a 1 MB stdout buffer through coreutils' stdbuf (found on the tool's PATH); without stdbuf it runs as it is", async () => {
    const printEnvironment = { role: 'pg_dump' as const, name: 'env', path: '/usr/bin/env' };
    const environmentSeen = async (env: NodeJS.ProcessEnv) => {
      const run = runTool(printEnvironment, [], {
        env,
        signal: new AbortController().signal,
        secrets: [],
        failureCode: 'BACKUP_FAILED',
        stdout: (await openBlockChannel())!,
      });
      const blocks: Buffer[] = [];
      for await (const block of run.stdout!) blocks.push(Buffer.from(block as Buffer));
      await run.done;
      return Buffer.concat(blocks).toString().split('\n');
    };
    // stdbuf passes the size, in bytes, to the tool's C library in _STDBUF_O (and preloads its setter).
    expect(await environmentSeen({ PATH: process.env.PATH })).toContain('_STDBUF_O=1048576');
    expect(await environmentSeen({ PATH: work })).not.toContain('_STDBUF_O=1048576');
  });

  it('ends (empty) when the tool cannot be started, and the run reports why', async () => {
    const channel = await openBlockChannel();
    const run = runTool({ role: 'pg_dump', name: 'missing', path: path.join(work, 'no-such-tool') }, [], {
      env: {},
      signal: new AbortController().signal,
      secrets: [],
      failureCode: 'BACKUP_FAILED',
      stdout: channel!,
    });
    const blocks: Buffer[] = [];
    for await (const block of run.stdout!) blocks.push(block as Buffer);
    expect(blocks).toEqual([]);
    await expect(run.done).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
  });
});
