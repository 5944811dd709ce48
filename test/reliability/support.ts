import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { expect } from 'vitest';
import { CATALOG_FILE_NAME, parseCatalog } from '../../src/catalog/catalog.ts';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import type { OperationResult } from '../../src/output/result.ts';
import type { OperationName } from './fixtures/operations.ts';

export interface ChildSpec {
  operation: OperationName;
  workspaceRoot: string;
  projectName: string;
  /** Relative to the workspace root; its own config file wins over the workspace's. */
  projectRoot?: string;
  options: Record<string, unknown>;
  now?: string;
  announceProgress?: boolean;
  reportPeakRss?: boolean;
}

export interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The operation's result, unless the process died before printing it. */
  result: OperationResult<unknown> | undefined;
}

export interface OperationChild {
  pid: number;
  done: Promise<ChildOutcome>;
  /** Resolves once stdout contains `text`; rejects if the child exits first. */
  printed(text: string | RegExp): Promise<void>;
  /** Resolves once the child reported at least `bytes` bytes of dump progress (needs announceProgress). */
  progressed(bytes: number): Promise<void>;
  kill(signal: NodeJS.Signals): void;
}

const FIXTURE = path.join(__dirname, 'fixtures', 'operation.ts');

/**
 * Runs one operation in its own Node process, with exactly the environment given. `fixture`: the
 * same fixture as plain JavaScript (see bundleOperationFixture), for measurements of the code as
 * it ships, without Node's TypeScript loader.
 */
export function runOperationChild(spec: ChildSpec, env: NodeJS.ProcessEnv, fixture = FIXTURE): OperationChild {
  const child = spawn(
    process.execPath,
    ['--disable-warning=MODULE_TYPELESS_PACKAGE_JSON', fixture, JSON.stringify(spec)],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  const checks: Array<() => boolean> = [];
  const recheck = () => {
    for (let index = checks.length - 1; index >= 0; index -= 1) if (checks[index]!()) checks.splice(index, 1);
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    recheck();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<ChildOutcome>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, result: parseResult(stdout) }));
  });
  const waitFor = (satisfied: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      if (satisfied()) return resolve();
      checks.push(() => (satisfied() ? (resolve(), true) : false));
      void done.then((outcome) =>
        reject(
          new Error(
            `the child exited (${outcome.code ?? outcome.signal}) before ${what}:\n${outcome.stdout}\n${outcome.stderr}`,
          ),
        ),
      );
    });
  return {
    pid: child.pid!,
    done,
    printed: (text) =>
      waitFor(() => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout)), `printing ${String(text)}`),
    progressed: (bytes) => waitFor(() => lastProgress(stdout) >= bytes, `${bytes} bytes of progress`),
    kill: (signal) => child.kill(signal),
  };
}

/**
 * The operation fixture and the sources it imports bundled into plain JavaScript in `directory`
 * (from src/ as it is now, never a stale dist/). Node's TypeScript loader adds ~18 MB of peak RSS
 * (amaro's WebAssembly) that an installed plugin does not have. Returns the entry file.
 */
export async function bundleOperationFixture(directory: string): Promise<string> {
  const { build } = await import('rolldown');
  await build({
    input: FIXTURE,
    platform: 'node',
    logLevel: 'silent',
    output: { dir: directory, format: 'esm', entryFileNames: 'operation.mjs' },
  });
  return path.join(directory, 'operation.mjs');
}

function parseResult(stdout: string): OperationResult<unknown> | undefined {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith('RESULT '));
  return line ? (JSON.parse(line.slice('RESULT '.length)) as OperationResult<unknown>) : undefined;
}

function lastProgress(stdout: string): number {
  const matches = [...stdout.matchAll(/^PROGRESS (\d+)$/gm)];
  return matches.length ? Number(matches[matches.length - 1]![1]) : 0;
}

/** Every file and directory under `dir`, relative to it, sorted; [] when it does not exist. */
export async function filesUnder(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names.map((name) => name.split(path.sep).join('/')).sort();
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * The catalog file as it is on disk (no rebuild): it must parse and validate, and every entry it
 * lists must be a complete backup whose bytes match the recorded checksum and whose manifest
 * agrees. Returns the entries.
 */
export async function expectSoundCatalog(workspaceRoot: string, backupRoot: string): Promise<BackupEntry[]> {
  const text = await readFile(path.join(backupRoot, CATALOG_FILE_NAME), 'utf8').catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    },
  );
  if (text === undefined) return [];
  const parsed = parseCatalog(text);
  if (parsed.kind !== 'valid')
    throw new Error(`the catalog does not parse: ${parsed.kind === 'invalid' ? parsed.reason : 'missing'}`);
  for (const entry of parsed.entries) {
    const file = path.resolve(workspaceRoot, entry.file_path);
    expect((await stat(file)).isFile(), `${entry.backup_id}: file`).toBe(true);
    expect(await sha256File(file), `${entry.backup_id}: checksum`).toBe(entry.checksum.value);
    const manifest = JSON.parse(
      await readFile(path.join(path.dirname(file), `${entry.backup_id}.manifest.json`), 'utf8'),
    ) as { backup: BackupEntry };
    expect(manifest.backup, `${entry.backup_id}: manifest`).toEqual(entry);
  }
  return parsed.entries;
}

/** Child processes of `pid` and their descendants, from /proc (Linux). */
export async function descendantsOf(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined);
    // Fields after the parenthesised command name: state, ppid, ...
    const afterName = status?.slice(status.lastIndexOf(')') + 2).split(' ');
    if (afterName?.[1]) parents.set(Number(name), Number(afterName[1]));
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

export interface LockHolder {
  /** Resolves once the child holds the lock. */
  locked: Promise<void>;
  done: Promise<number | null>;
  stop(): void;
}

/** Another process holding the catalog lock of `backupRoot` for `holdMs`. */
export function holdCatalogLock(backupRoot: string, holdMs: number, releasedMarker?: string): LockHolder {
  const lockPath = `${path.join(backupRoot, CATALOG_FILE_NAME)}.lock`;
  const args = [lockPath, String(holdMs), ...(releasedMarker ? [releasedMarker] : [])];
  const child = spawn(
    process.execPath,
    [
      '--disable-warning=MODULE_TYPELESS_PACKAGE_JSON',
      path.join(__dirname, '..', 'catalog', 'fixtures', 'hold-lock.ts'),
      ...args,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    void done.then((code) => reject(new Error(`the lock holder exited (${code}) before taking the lock`)));
  });
  return { locked, done, stop: () => child.kill('SIGTERM') };
}

/** The pid of a process that has certainly exited. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}
