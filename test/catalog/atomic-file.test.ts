import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir, writeFileAtomic } from '../../src/catalog/atomic-file.ts';
import { runFixture } from './child.ts';
import { stringMatching } from '../support/matchers.ts';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faber-atomic-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

describe('writeFileAtomic', () => {
  it('creates and then replaces a file, mode 0600, leaving no temporary file', async () => {
    const target = path.join(dir, 'backups.json');
    await writeFileAtomic(target, 'first');
    await writeFileAtomic(target, new TextEncoder().encode('second'));
    expect(await fs.readFile(target, 'utf8')).toBe('second');
    expect(await mode(target)).toBe(0o600);
    expect(await fs.readdir(dir)).toEqual(['backups.json']);
  });

  it('applies the requested mode exactly, whatever the umask', async () => {
    const target = path.join(dir, 'shared.txt');
    const previous = process.umask(0o077);
    try {
      await writeFileAtomic(target, 'x', 0o640);
    } finally {
      process.umask(previous);
    }
    expect(await mode(target)).toBe(0o640);
  });

  it('keeps the old content and removes its temporary file when the write fails midway', async () => {
    const target = path.join(dir, 'backups.json');
    await fs.writeFile(target, 'old content');
    // A file size limit of 8 KiB makes the kernel refuse the write with EFBIG part way through.
    const child = runFixture('write-atomic.ts', [target, String(200_000)], 'ulimit -f 16');
    const result = await child.done;
    expect(result.stdout.trim()).toBe('failed EFBIG');
    expect(await fs.readFile(target, 'utf8')).toBe('old content');
    expect(await fs.readdir(dir)).toEqual(['backups.json']);
  });

  it('the same write succeeds without the limit (the failure above was the limit)', async () => {
    const target = path.join(dir, 'backups.json');
    const result = await runFixture('write-atomic.ts', [target, String(200_000)]).done;
    expect(result.stdout.trim()).toBe('written');
    expect((await fs.stat(target)).size).toBe(200_000);
  });

  it('keeps the old target and removes its temporary file when the rename fails', async () => {
    const target = path.join(dir, 'occupied');
    await fs.mkdir(target);
    await fs.writeFile(path.join(target, 'inside'), 'keep me');
    await expect(writeFileAtomic(target, 'new')).rejects.toMatchObject({
      code: stringMatching(/EISDIR|ENOTEMPTY|EEXIST/),
    });
    expect(await fs.readFile(path.join(target, 'inside'), 'utf8')).toBe('keep me');
    expect(await fs.readdir(dir)).toEqual(['occupied']);
  });

  it('concurrent writers each leave a complete file, never a mix', async () => {
    const target = path.join(dir, 'contended.txt');
    const contents = Array.from({ length: 20 }, (_, index) => String(index).repeat(50_000));
    await Promise.all(contents.map((content) => writeFileAtomic(target, content)));
    expect(contents).toContain(await fs.readFile(target, 'utf8'));
    expect(await fs.readdir(dir)).toEqual(['contended.txt']);
  });
});

describe('ensurePrivateDir', () => {
  it('creates missing parents with mode 0700 and accepts an existing directory', async () => {
    const nested = path.join(dir, 'a', 'b', 'c');
    await ensurePrivateDir(nested);
    await ensurePrivateDir(nested);
    for (const level of ['a', 'a/b', 'a/b/c']) expect(await mode(path.join(dir, level))).toBe(0o700);
  });
});
