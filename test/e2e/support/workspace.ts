import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { DEVKIT_VERSION, NX_VERSION, pluginInstall } from './plugin-install.ts';

/**
 * A hand-built Nx workspace in a temp directory with the packed plugin installed, and the real
 * `nx` binary run in it the way CI runs it (no daemon, no cloud, no TUI, CI=true).
 */

export const CONFIG_FILE = '.fractary/plugins/faber-db/config.json';
export const BACKUP_DIRECTORY = '.fractary/plugins/faber-db/backups';
export const CATALOG_FILE = `${BACKUP_DIRECTORY}/backups.json`;
const NX_TIMEOUT_MS = 120_000;

export interface NxRun {
  command: string;
  status: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface E2eWorkspace {
  root: string;
  write(file: string, content: string | object): void;
  read(file: string): string;
  readJson<T = Record<string, unknown>>(file: string): T;
  exists(file: string): boolean;
  /** Files under a directory (relative to it), none when it does not exist. */
  files(directory: string): string[];
  /** Runs nx; never throws on a non-zero exit (see {@link expectSuccess}). */
  nx(args: readonly string[], env?: Record<string, string>): NxRun;
  git(...args: string[]): string;
  /** Stages everything and commits; returns the new HEAD. */
  commit(message: string): string;
  dispose(): void;
}

/** Connection variables a developer's shell may hold: they must not beat the workspace's .env files. */
const INHERITED_DATABASE_VARIABLE = /DATABASE_URL$/;

/**
 * The environment of a child nx: without the outer process's NX_* variables (a surrounding Nx
 * task leaks NX_TASK_TARGET_*, NX_WORKSPACE_ROOT, ...), in CI mode, and with this test's Node
 * first on PATH so `node` in a run-commands target is the same Node 24.
 */
export function nxEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([name]) => !name.startsWith('NX_') && !INHERITED_DATABASE_VARIABLE.test(name),
  );
  return {
    ...Object.fromEntries(inherited),
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    NX_INTERACTIVE: 'false',
    CI: 'true',
    ...extra,
  };
}

export function describeRun(run: NxRun): string {
  return `${run.command} exited with ${run.status} after ${run.durationMs} ms\n--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
}

/** Throws the whole output when nx failed, so a failing test shows why. */
export function expectSuccess(run: NxRun): NxRun {
  if (run.status !== 0) throw new Error(describeRun(run));
  return run;
}

export interface OperationJson {
  status: 'success' | 'error';
  operation: string;
  project?: string;
  environment?: string;
  result: Record<string, unknown>;
  error_code?: string;
  message?: string;
  error?: string;
}

/** Nx prints its own lines around a task's output: the results are the lines that are operation JSON objects. */
export function operationResults(stdout: string): OperationJson[] {
  const results: OperationJson[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) continue;
    try {
      const value = JSON.parse(trimmed) as Partial<OperationJson>;
      if (typeof value.operation === 'string' && typeof value.status === 'string') results.push(value as OperationJson);
    } catch {
      // An nx line that happens to start with a brace.
    }
  }
  return results;
}

/** The single operation result of a one-task run. */
export function operationResult<T = Record<string, unknown>>(run: NxRun): OperationJson & { result: T } {
  const results = operationResults(run.stdout);
  if (results.length !== 1) throw new Error(`expected one JSON result, found ${results.length}\n${describeRun(run)}`);
  return results[0] as OperationJson & { result: T };
}

function writeFile(root: string, file: string, content: string | object): void {
  const target = path.join(root, file);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
}

/** nx's own entry point, as its package.json names it (run with this Node, not through a shim). */
function nxBinary(root: string): string {
  const manifest = JSON.parse(readFileSync(path.join(root, 'node_modules', 'nx', 'package.json'), 'utf-8')) as {
    bin: { nx: string };
  };
  return path.join(root, 'node_modules', 'nx', manifest.bin.nx);
}

const BASE_GITIGNORE = ['node_modules', '.nx/', '.env', '.env.*', ''].join('\n');

/**
 * Creates the workspace: package.json, nx.json (analytics off), the given files, node_modules
 * linked to the shared install, and a first commit.
 */
export async function createWorkspace(files: Record<string, string | object>): Promise<E2eWorkspace> {
  const install = await pluginInstall();
  const root = mkdtempSync(path.join(tmpdir(), 'faber-e2e-'));
  const write = (file: string, content: string | object) => writeFile(root, file, content);
  write('package.json', {
    name: 'e2e-workspace',
    version: '0.0.0',
    private: true,
    devDependencies: { nx: NX_VERSION, '@nx/devkit': DEVKIT_VERSION },
  });
  write('nx.json', { $schema: './node_modules/nx/schemas/nx-schema.json', analytics: false });
  write('.gitignore', BASE_GITIGNORE);
  for (const [file, content] of Object.entries(files)) write(file, content);
  symlinkSync(install.nodeModules, path.join(root, 'node_modules'), 'dir');

  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'] });
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'e2e@example.test');
  git('config', 'user.name', 'faber e2e');
  git('config', 'commit.gpgsign', 'false');
  const commit = (message: string) => {
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', message);
    return git('rev-parse', 'HEAD').trim();
  };
  commit('initial workspace');

  const nxBin = nxBinary(root);
  return {
    root,
    write,
    read: (file) => readFileSync(path.join(root, file), 'utf-8'),
    readJson: <T>(file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf-8')) as T,
    exists: (file) => existsSync(path.join(root, file)),
    files: (directory) =>
      existsSync(path.join(root, directory))
        ? readdirSync(path.join(root, directory), { recursive: true, withFileTypes: true })
            .filter((entry) => !entry.isDirectory())
            .map((entry) => path.relative(path.join(root, directory), path.join(entry.parentPath, entry.name)))
        : [],
    nx(args, env = {}) {
      const started = Date.now();
      const child = spawnSync(process.execPath, [nxBin, ...args], {
        cwd: root,
        env: nxEnvironment(env),
        encoding: 'utf-8',
        timeout: NX_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
      });
      return {
        command: `nx ${args.join(' ')}`,
        status: child.status,
        // Nx colours its lines even without a terminal when the test runner forces colour.
        stdout: stripVTControlCharacters(child.stdout ?? ''),
        stderr: stripVTControlCharacters(`${child.stderr ?? ''}${child.error ? `\n${child.error.message}` : ''}`),
        durationMs: Date.now() - started,
      };
    },
    git,
    commit,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}
