import { execFile, execFileSync } from 'node:child_process';
import fs, { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBackup } from '../../src/operations/backup.ts';
import type { OperationContext } from '../../src/operations/context.ts';
import type { ErrorResult, OperationResult } from '../../src/output/result.ts';
import { adminUrl, freshPostgres, type FreshDatabase } from '../support/databases.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { seedBulk, sessionsOn } from './seed.ts';
import { filesUnder } from './support.ts';

/**
 * Every stage of the one-pass pipeline (pg_dump → hash → compress → hash → file → fsync) can fail
 * on its own; each failure must fail the backup (no "pipefail" gap), remove the partial file and
 * record nothing. Real pg_dump and real files throughout; the faults are a wrapper script around
 * the real pg_dump, a real tmpfs that fills up, a real pg_terminate_backend, and (where the kernel
 * cannot be asked to fail) an injected error from the compressor or from fsync.
 */

const execFileAsync = promisify(execFile);
const MB = 1024 * 1024;

let source: FreshDatabase;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  source = await freshPostgres();
  cleanups.push(() => source.drop());
  await seedBulk(source.url, 35);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

afterEach(() => {
  vi.restoreAllMocks();
});

async function workspaceFor(config: { directory?: string } = {}): Promise<TestWorkspace> {
  const workspace = await makeWorkspace(
    { database: { provider: 'postgresql' }, ...(config.directory ? { backup: { directory: config.directory } } : {}) },
    { DEV_DATABASE_URL: source.url },
  );
  cleanups.push(() => rm(workspace.root, { recursive: true, force: true }));
  return workspace;
}

/** A failed backup: its code, a message, no stack, no file left, nothing in the catalog. */
async function expectCleanFailure(
  workspace: TestWorkspace,
  result: OperationResult<unknown>,
  codes: readonly string[],
): Promise<ErrorResult> {
  expect(result.status, JSON.stringify(result)).toBe('error');
  const failure = result as ErrorResult;
  expect(codes).toContain(failure.error_code);
  expect(failure.error.length).toBeGreaterThan(10);
  expect(failure.stack).toBeUndefined();
  const files = (await filesUnder(workspace.backupRoot)).filter((name) =>
    /\.(partial|sql|zst|gz|dump|json)$|\.tmp-|pgpass/.test(name),
  );
  expect(files, 'files left behind').toEqual([]);
  expect((await workspace.catalog.read()).entries).toEqual([]);
  return failure;
}

/** A directory holding a `pg_dump` that runs the real one through a shell snippet. */
async function wrappedPgDump(body: string): Promise<string> {
  const realPgDump = (await execFileAsync('sh', ['-c', 'command -v pg_dump'])).stdout.trim();
  const bin = await mkdtemp(path.join(tmpdir(), 'faber-fake-bin-'));
  cleanups.push(() => rm(bin, { recursive: true, force: true }));
  const script = `#!/bin/bash\nset -o pipefail\nREAL=${JSON.stringify(realPgDump)}\nif [ "$1" = "--version" ]; then exec "$REAL" --version; fi\n${body}\n`;
  await writeFile(path.join(bin, 'pg_dump'), script);
  await chmod(path.join(bin, 'pg_dump'), 0o755);
  return bin;
}

function withPath(workspace: TestWorkspace, bin: string): Partial<OperationContext> {
  return { env: { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, DEV_DATABASE_URL: source.url } };
}

/** A stream stage that passes `bytes` through and then fails with `error`. */
function failingAfter(bytes: number, error: Error, inner: Transform): Transform {
  let seen = 0;
  const wrapper = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > bytes) return callback(error);
      if (!inner.write(chunk)) inner.once('drain', () => callback());
      else callback();
    },
    flush(callback) {
      inner.end();
      inner.once('end', () => callback());
    },
  });
  inner.on('data', (chunk: Buffer) => wrapper.push(chunk));
  inner.on('error', (innerError) => wrapper.destroy(innerError));
  return wrapper;
}

describe('pipeline stage failures are all detected', () => {
  it('pg_dump writes its whole output, then exits non-zero → BACKUP_FAILED, nothing recorded', async () => {
    const workspace = await workspaceFor();
    const bin = await wrappedPgDump(
      '"$REAL" "$@"\necho "pg_dump: error: simulated failure after the output" >&2\nexit 3',
    );
    const result = await createBackup({ environment: 'dev' }, workspace.ctx(withPath(workspace, bin)));
    const failure = await expectCleanFailure(workspace, result, ['BACKUP_FAILED']);
    expect(failure.error).toContain('exited with code 3');
  });

  it('pg_dump is cut short but exits 0 → VERIFICATION_FAILED (no completion trailer), nothing recorded', async () => {
    const workspace = await workspaceFor();
    const bin = await wrappedPgDump('"$REAL" "$@" | head -c 3000000\nexit 0');
    const result = await createBackup({ environment: 'dev' }, workspace.ctx(withPath(workspace, bin)));
    const failure = await expectCleanFailure(workspace, result, ['VERIFICATION_FAILED']);
    expect(failure.error).toContain('cut short');
  });

  it('pg_dump dies mid-output (SIGPIPE after 2 MB) → BACKUP_FAILED, nothing recorded', async () => {
    const workspace = await workspaceFor();
    const bin = await wrappedPgDump('"$REAL" "$@" | head -c 2000000');
    const result = await createBackup({ environment: 'dev' }, workspace.ctx(withPath(workspace, bin)));
    await expectCleanFailure(workspace, result, ['BACKUP_FAILED']);
  });

  it('the compressor fails mid-stream → error, pg_dump stopped, nothing recorded', async () => {
    const workspace = await workspaceFor();
    const real = zlib.createZstdCompress.bind(zlib);
    vi.spyOn(zlib, 'createZstdCompress').mockImplementation(
      (options) =>
        failingAfter(
          2 * MB,
          new Error('zstd: simulated compressor failure'),
          real(options),
        ) as unknown as zlib.ZstdCompress,
    );
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    const failure = await expectCleanFailure(workspace, result, ['BACKUP_FAILED']);
    expect(failure.error).toContain('simulated compressor failure');
    expect(await waitForNoSessions(source.name)).toBe(0);
  });

  it('fsync of the backup file returns EIO → IO_ERROR, nothing recorded', async () => {
    const workspace = await workspaceFor();
    await failFsyncOf(/\.partial$/);
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    const failure = await expectCleanFailure(workspace, result, ['IO_ERROR']);
    expect(failure.error).toMatch(/EIO|i\/o error/i);
  });

  it('fsync of the catalog returns EIO → IO_ERROR, the renamed backup file removed, nothing recorded', async () => {
    const workspace = await workspaceFor();
    await failFsyncOf(/backups\.json\.tmp-/);
    const result = await createBackup({ environment: 'dev' }, workspace.ctx());
    await expectCleanFailure(workspace, result, ['IO_ERROR']);
  });
});

/**
 * FileHandle.sync rejects with EIO for files whose path matches, as a failing disk does. The
 * path is read from /proc/self/fd, so the code under test is not changed at all.
 */
async function failFsyncOf(pattern: RegExp): Promise<void> {
  const probe = await open(__filename, 'r');
  const prototype = Object.getPrototypeOf(probe) as { sync: (this: { fd: number }) => Promise<void> };
  await probe.close();
  const realSync = prototype.sync;
  vi.spyOn(prototype, 'sync').mockImplementation(async function (this: { fd: number }) {
    const target = await readlink(`/proc/self/fd/${this.fd}`).catch(() => '');
    if (pattern.test(target))
      throw Object.assign(new Error(`EIO: i/o error, fsync '${target}'`), { code: 'EIO', errno: -5, syscall: 'fsync' });
    return realSync.call(this);
  });
}

async function waitForNoSessions(database: string): Promise<number> {
  let sessions = await sessionsOn(adminUrl('postgresql'), database);
  for (let waited = 0; sessions > 0 && waited < 10_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    sessions = await sessionsOn(adminUrl('postgresql'), database);
  }
  return sessions;
}

describe('the database dies mid-dump', () => {
  it('pg_terminate_backend of the pg_dump session → error, nothing recorded', async () => {
    const workspace = await workspaceFor();
    let terminated: Promise<unknown> | undefined;
    const ctx = workspace.ctx();
    const reporter = ctx.reporter;
    ctx.reporter = {
      ...reporter,
      progress: (update) => {
        if (update.bytes > MB && !terminated) terminated = terminateDump(source.name);
      },
    };
    const result = await createBackup({ environment: 'dev' }, ctx);
    expect(await terminated).toBe(1);
    const failure = await expectCleanFailure(workspace, result, ['CONNECTION_FAILED', 'BACKUP_FAILED']);
    expect(failure.error).toMatch(/terminat|server closed|connection/i);
  });
});

async function terminateDump(database: string): Promise<number> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: adminUrl('postgresql') });
  await client.connect();
  try {
    const { rows } = await client.query<{ done: boolean }>(
      // pg_dump's session is the one running COPY (the handler's own session holds the snapshot, idle).
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY %' AND state = 'active'`,
      [database],
    );
    return rows.filter((row) => row.done).length;
  } finally {
    await client.end();
  }
}

/**
 * A real 2 MB tmpfs when this machine lets the test mount one (root, no sandbox in the way);
 * otherwise the write layer fails with ENOSPC after 2 MB, and the test's name says so.
 */
const TMPFS_BYTES = 2 * MB;
const canMountTmpfs = probeTmpfsMount();

function probeTmpfsMount(): boolean {
  const probe = mkdtempSync(path.join(tmpdir(), 'faber-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

async function smallDisk(): Promise<string> {
  const mountPoint = await mkdtemp(path.join(tmpdir(), 'faber-full-'));
  cleanups.push(() => rm(mountPoint, { recursive: true, force: true }));
  if (canMountTmpfs) {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES},mode=0700`, 'tmpfs', mountPoint]);
    cleanups.push(() => execFileAsync('umount', [mountPoint]));
  } else {
    failWritesAfter(TMPFS_BYTES, mountPoint);
  }
  return mountPoint;
}

/** Simulated full disk: writes to files under `directory` fail with ENOSPC once `bytes` were written there. */
function failWritesAfter(bytes: number, directory: string): void {
  let written = 0;
  const enospc = () =>
    Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
    });
  const underDirectory = (fd: number) => readlinkSync(`/proc/self/fd/${fd}`).startsWith(directory);
  const realWrite = fs.write;
  const realWritev = fs.writev;
  vi.spyOn(fs, 'write').mockImplementation(((fd: number, buffer: Buffer, ...rest: unknown[]) => {
    const callback = rest[rest.length - 1] as (error: Error | null) => void;
    if (underDirectory(fd) && (written += buffer.length) > bytes) return void process.nextTick(callback, enospc());
    return (realWrite as (...args: unknown[]) => void)(fd, buffer, ...rest);
  }) as typeof fs.write);
  vi.spyOn(fs, 'writev').mockImplementation(((fd: number, buffers: Buffer[], ...rest: unknown[]) => {
    const callback = rest[rest.length - 1] as (error: Error | null) => void;
    const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    if (underDirectory(fd) && (written += length) > bytes) return void process.nextTick(callback, enospc());
    return (realWritev as (...args: unknown[]) => void)(fd, buffers, ...rest);
  }) as typeof fs.writev);
}

describe(
  canMountTmpfs
    ? 'the disk fills up mid-dump (a real 2 MB tmpfs)'
    : 'the disk fills up mid-dump (ENOSPC simulated at the write layer: this machine cannot mount a tmpfs)',
  () => {
    it('the disk fills after the pre-check (another writer took the space) → INSUFFICIENT_DISK_SPACE, nothing left, nothing recorded', async () => {
      const backups = path.join(await smallDisk(), 'backups');
      await mkdir(backups);
      const workspace = await workspaceFor({ directory: backups });
      // The pre-check is told there is room, as it would be just before another process filled the disk.
      const result = await createBackup(
        { environment: 'dev' },
        workspace.ctx({ freeSpace: () => Promise.resolve(1024 * MB) }),
      );
      const failure = await expectCleanFailure(workspace, result, ['INSUFFICIENT_DISK_SPACE']);
      expect(failure.recovery.suggestions.join(' ')).toMatch(/space|cleanup/i);
      // Directories may stay; no file may (a failed backup also gives its id claim back).
      expect((await filesUnder(backups)).filter((name) => !/^(api|api\/dev|\.tmp|\.reservations)$/.test(name))).toEqual(
        [],
      );
    });
  },
);
