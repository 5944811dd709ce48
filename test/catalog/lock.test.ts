import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireLock, releaseLock, withLock } from '../../src/catalog/lock.ts';
import { FaberError } from '../../src/output/errors.ts';
import { deadPid, type RunningChild, runFixture } from './child.ts';
import { anyInstance } from '../support/matchers.ts';

let dir: string;
let lockPath: string;
const children: RunningChild[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'faber-lock-'));
  lockPath = path.join(dir, 'backups.json.lock');
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null) child.process.kill();
    await child.done;
  }
  await fs.rm(dir, { recursive: true, force: true });
});

function hold(holdMs: number, releasedMarker?: string): RunningChild {
  const child = runFixture('hold-lock.ts', [lockPath, String(holdMs), ...(releasedMarker ? [releasedMarker] : [])]);
  children.push(child);
  return child;
}

async function writeLock(content: string, ageMs = 0): Promise<void> {
  await fs.writeFile(lockPath, content);
  const past = new Date(Date.now() - ageMs);
  await fs.utimes(lockPath, past, past);
}

const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );

describe('withLock', () => {
  it('holds a lock file naming this process while fn runs, and removes it after', async () => {
    const seen = await withLock(
      lockPath,
      async () => JSON.parse(await fs.readFile(lockPath, 'utf8')) as Record<string, unknown>,
    );
    expect(seen).toMatchObject({ pid: process.pid, hostname: os.hostname(), acquired_at: anyInstance(String) });
    expect(Date.parse(seen.acquired_at as string)).not.toBeNaN();
    expect(await exists(lockPath)).toBe(false);
  });

  it('releases the lock when fn throws, and passes the error on', async () => {
    await expect(withLock(lockPath, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(
      withLock(lockPath, () => {
        throw new Error('sync boom');
      }),
    ).rejects.toThrow('sync boom');
    expect(await exists(lockPath)).toBe(false);
  });

  it('serialises callers within one process', async () => {
    const events: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        withLock(lockPath, async () => {
          events.push(`${name} in`);
          await new Promise((resolve) => setTimeout(resolve, 20));
          events.push(`${name} out`);
        }),
      ),
    );
    for (let index = 0; index < events.length; index += 2) {
      expect(events[index + 1]).toBe(events[index]!.replace('in', 'out'));
    }
  });

  it('refuses a nested withLock on the same lock at once instead of waiting for itself', async () => {
    const started = Date.now();
    // With a 60 s lock timeout, an answer well before it means the nested call did not wait on itself.
    const nested = withLock(lockPath, () => withLock(lockPath, () => 'inner', { timeoutMs: 60_000 }));
    await expect(nested).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await exists(lockPath)).toBe(false);
    const otherLock = path.join(dir, 'other.lock');
    expect(await withLock(lockPath, () => withLock(otherLock, () => 'both'))).toBe('both');
  });

  it('takes over a lock left by a process that has died', async () => {
    const pid = await deadPid();
    await writeLock(JSON.stringify({ pid, hostname: os.hostname(), acquired_at: new Date().toISOString() }));
    // Waiting instead of taking over would end in LOCK_TIMEOUT.
    const ran = await withLock(lockPath, () => 'ran', { timeoutMs: 2_000 });
    expect(ran).toBe('ran');
    expect(await exists(lockPath)).toBe(false);
  });

  it('takes over an empty lock file once it is older than staleMs', async () => {
    await writeLock('', 10_000);
    expect(await withLock(lockPath, () => 'ran', { timeoutMs: 2_000, staleMs: 5_000 })).toBe('ran');
  });

  it('does not take over an empty lock file that is still young (its writer may be mid-write)', async () => {
    await writeLock('');
    await expect(withLock(lockPath, () => 'ran', { timeoutMs: 300, staleMs: 5_000 })).rejects.toMatchObject({
      code: 'LOCK_TIMEOUT',
    });
    expect(await fs.readFile(lockPath, 'utf8')).toBe('');
  });

  it('does not take over a lock held by a live process on another host, however old', async () => {
    await writeLock(
      JSON.stringify({ pid: 1, hostname: `not-${os.hostname()}`, acquired_at: '2020-01-01T00:00:00.000Z' }),
      86_400_000,
    );
    await expect(withLock(lockPath, () => 'ran', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'LOCK_TIMEOUT' });
  });

  it('waits for a live holder in another process, then runs', async () => {
    const released = path.join(dir, 'released');
    const holder = hold(600, released);
    await holder.printed('locked');
    await withLock(
      lockPath,
      async () => {
        // The holder writes the marker just before it lets go: finding it proves this waited.
        expect(await exists(released)).toBe(true);
      },
      { timeoutMs: 10_000 },
    );
    expect((await holder.done).code).toBe(0);
  });

  it('fails with LOCK_TIMEOUT naming the lock file and the holder, with suggestions', async () => {
    const holder = hold(30_000);
    await holder.printed('locked');
    const started = Date.now();
    const error = await withLock(lockPath, () => 'ran', { timeoutMs: 400 }).catch((caught: unknown) => caught);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(Date.now() - started).toBeLessThan(25_000); // well before the holder lets go
    expect(error).toBeInstanceOf(FaberError);
    const lockError = error as FaberError;
    expect(lockError.code).toBe('LOCK_TIMEOUT');
    expect(lockError.message).toContain(lockPath);
    expect(lockError.message).toContain(`pid ${holder.process.pid}`);
    expect(lockError.result).toMatchObject({ lock_file: lockPath, holder_pid: holder.process.pid });
    expect(lockError.suggestions.join('\n')).toContain(`rm ${lockPath}`);
    // The holder's lock is untouched by the failed waiter.
    expect(JSON.parse(await fs.readFile(lockPath, 'utf8'))).toMatchObject({ pid: holder.process.pid });
  });

  it('release leaves a lock that is no longer ours', async () => {
    const mine = await acquireLock(lockPath);
    const theirs = { pid: 1, hostname: 'elsewhere', acquired_at: new Date().toISOString(), token: 'theirs' };
    await fs.writeFile(lockPath, JSON.stringify(theirs));
    await releaseLock(lockPath, mine);
    expect(JSON.parse(await fs.readFile(lockPath, 'utf8'))).toEqual(theirs);
  });

  it('keeps mutual exclusion when 8 processes find the same dead lock at once', async () => {
    const counterPath = path.join(dir, 'counter');
    await fs.writeFile(counterPath, '0');
    await writeLock(
      JSON.stringify({ pid: await deadPid(), hostname: os.hostname(), acquired_at: new Date().toISOString() }),
    );
    const startAt = String(Date.now() + 1_500);
    const contenders = Array.from({ length: 8 }, () =>
      runFixture('lock-contender.ts', [lockPath, counterPath, '10', startAt]),
    );
    children.push(...contenders);
    const results = await Promise.all(contenders.map((child) => child.done));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    // Every increment survived: no two processes were ever inside at once.
    expect(await fs.readFile(counterPath, 'utf8')).toBe('80');
    expect((await fs.readdir(dir)).sort()).toEqual(['counter']);
  });
});
