import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaberError } from '../output/errors.ts';
import { LocalStorage } from '../storage/local.ts';
import type { Storage } from '../storage/storage.ts';

export interface LockOptions {
  /** How long to wait for another holder before failing with LOCK_TIMEOUT. */
  timeoutMs?: number;
  /**
   * How old an empty or unreadable lock file must be before it counts as abandoned. A lock whose
   * holder is alive is never taken over, however old: only a dead pid or a garbled file is.
   */
  staleMs?: number;
}

/** What a lock file holds. `token` tells two holders with the same pid apart. */
export interface LockHolder {
  pid: number;
  hostname: string;
  acquired_at: string;
  token: string;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const DEFAULT_LOCK_STALE_MS = 5_000;
const FIRST_RETRY_MS = 5;
const MAX_RETRY_MS = 100;

/** The locks the current async call chain holds, to refuse a nested withLock that would wait for itself. */
const heldLocks = new AsyncLocalStorage<ReadonlySet<string>>();

/** A lock object: `key` in `storage` (a lock file `<dir>/<name>` is key `<name>` of the directory). */
export interface LockRef {
  storage: Storage;
  key: string;
  /** Create the lock's missing parent directories (a lock file path given as a string needs them to exist). */
  createParents?: boolean;
}

function lockRef(lock: string | LockRef): LockRef {
  if (typeof lock !== 'string') return lock;
  const directory = path.dirname(path.resolve(lock));
  return { storage: new LocalStorage(directory, directory), key: path.basename(lock) };
}

function lockName(lock: LockRef): string {
  return lock.storage.localPath(lock.key) ?? lock.storage.locationOf(lock.key);
}

/**
 * Runs `fn` while holding a lock file that every process on this machine (and on machines that
 * share the directory) respects. The lock is released however `fn` ends.
 */
export async function withLock<T>(
  lock: string | LockRef,
  fn: () => T | Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const ref = lockRef(lock);
  const key = lockName(ref);
  const held = heldLocks.getStore() ?? new Set<string>();
  if (held.has(key)) {
    throw new FaberError(
      'INTERNAL_ERROR',
      `The lock ${key} was requested again by the code that holds it; that would wait forever`,
    );
  }
  const holder = await acquireLock(ref, options);
  try {
    return await heldLocks.run(new Set([...held, key]), fn);
  } finally {
    await releaseLock(ref, holder);
  }
}

export async function acquireLock(lock: string | LockRef, options: LockOptions = {}): Promise<LockHolder> {
  const lockPath = lockRef(lock);
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const staleMs = options.staleMs ?? DEFAULT_LOCK_STALE_MS;
  const started = Date.now();
  for (let attempt = 0; ; attempt += 1) {
    const mine = newHolder();
    if (await tryCreateLockFile(lockPath, mine)) return mine;
    const observed = await observeLock(lockPath);
    if (observed.kind === 'gone') continue;
    if (isAbandoned(observed, staleMs) && (await removeAbandonedLock(lockPath, staleMs))) continue;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw lockTimeout(lockName(lockPath), observed, waited);
    await sleep(Math.min(retryDelay(attempt), timeoutMs - waited));
  }
}

/** Removes the lock only if it still holds our token: a lock taken over from us is not ours to delete. */
export async function releaseLock(lock: string | LockRef, holder: LockHolder): Promise<void> {
  const lockPath = lockRef(lock);
  const observed = await observeLock(lockPath);
  if (observed.kind === 'held' && observed.holder.token === holder.token) {
    await lockPath.storage.delete(lockPath.key);
  }
}

function newHolder(): LockHolder {
  return {
    pid: process.pid,
    hostname: os.hostname(),
    acquired_at: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
}

/** O_EXCL creation: exactly one process can create the file, whatever the others do. */
async function tryCreateLockFile(lockPath: LockRef, holder: LockHolder): Promise<boolean> {
  return lockPath.storage.putIfAbsent(lockPath.key, JSON.stringify(holder), {
    parents: lockPath.createParents ? 'create' : 'require',
  });
}

type ObservedLock =
  | { kind: 'gone' }
  | { kind: 'held'; holder: LockHolder; ageMs: number }
  /** Empty or not our JSON: a writer may be between create and write, or may have died there. */
  | { kind: 'garbled'; ageMs: number };

async function observeLock(lockPath: LockRef): Promise<ObservedLock> {
  const [data, stats] = await Promise.all([lockPath.storage.read(lockPath.key), lockPath.storage.stat(lockPath.key)]);
  if (data === undefined || stats === undefined) return { kind: 'gone' };
  const ageMs = Date.now() - stats.modifiedMs;
  const holder = parseHolder(data.toString('utf8'));
  return holder ? { kind: 'held', holder, ageMs } : { kind: 'garbled', ageMs };
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, hostname, acquired_at, token } = value as Record<string, unknown>;
    if (!Number.isInteger(pid) || typeof hostname !== 'string' || typeof acquired_at !== 'string') return undefined;
    return { pid: pid as number, hostname, acquired_at, token: typeof token === 'string' ? token : '' };
  } catch {
    return undefined;
  }
}

function isAbandoned(observed: ObservedLock, staleMs: number): boolean {
  if (observed.kind === 'garbled') return observed.ageMs > staleMs;
  if (observed.kind === 'held')
    return observed.holder.hostname === os.hostname() && !isProcessAlive(observed.holder.pid);
  return false;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Several waiters can see the same abandoned lock at once. If each simply deleted it, a slow one
 * could delete the lock a faster one has just created. So removal happens under a short-lived
 * guard lock, and the lock is judged abandoned again under the guard before it is deleted: only
 * the first remover finds it abandoned, the others find a live holder (or nothing) and go back
 * to waiting.
 */
async function removeAbandonedLock(lockPath: LockRef, staleMs: number): Promise<boolean> {
  const guardPath = { storage: lockPath.storage, key: `${lockPath.key}.takeover` };
  const guard = newHolder();
  if (!(await tryCreateLockFile(guardPath, guard))) return clearAbandonedGuard(guardPath, staleMs);
  try {
    const observed = await observeLock(lockPath);
    if (isAbandoned(observed, staleMs)) await lockPath.storage.delete(lockPath.key);
    return true;
  } finally {
    await releaseLock(guardPath, guard);
  }
}

/**
 * The guard is held for a few file operations; one left behind means its holder died there.
 * (Two waiters clearing the same dead guard could both enter it; the re-check under the guard
 * still stops all but one of them in practice. It takes two crashes in a row to get here.)
 */
async function clearAbandonedGuard(guardPath: LockRef, staleMs: number): Promise<boolean> {
  const observed = await observeLock(guardPath);
  if (!isAbandoned(observed, staleMs)) return false;
  await guardPath.storage.delete(guardPath.key);
  return true;
}

/** Exponential backoff with jitter, so waiting processes do not poll in lockstep. */
function retryDelay(attempt: number): number {
  const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(attempt, 10));
  return base / 2 + Math.random() * base;
}

function lockTimeout(lockPath: string, observed: ObservedLock, waitedMs: number): FaberError {
  const holder = observed.kind === 'held' ? observed.holder : undefined;
  const heldBy = holder
    ? `pid ${holder.pid} on ${holder.hostname} since ${holder.acquired_at}`
    : 'a process that has not written its pid yet';
  return new FaberError(
    'LOCK_TIMEOUT',
    `Timed out after ${Math.round(waitedMs / 1000)}s waiting for the lock ${lockPath}, held by ${heldBy}`,
    {
      result: {
        lock_file: lockPath,
        holder_pid: holder?.pid ?? null,
        holder_hostname: holder?.hostname ?? null,
        held_since: holder?.acquired_at ?? null,
        waited_ms: waitedMs,
      },
      suggestions: [
        holder
          ? `Wait for the other faber-db task (pid ${holder.pid} on ${holder.hostname}) to finish, then run the command again`
          : 'Wait for the other faber-db task to finish, then run the command again',
        `If no faber-db task is running (for example after a crash or a reboot), remove the stale lock: rm ${lockPath}`,
      ],
    },
  );
}
