import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The plugin as users get it: `npm pack` (which runs the package's own `prepare` build) of a
 * snapshot of the working tree, installed with the repository's nx and @nx/devkit by npm. One
 * install per source state is shared by every e2e file of a run (and by later runs while the
 * sources do not change): the test files symlink their workspace's node_modules to it.
 */

export const REPO = path.resolve(__dirname, '../../..');
const CACHE_ROOT = path.join(tmpdir(), 'faber-e2e-install');
/** Files the package build does not read: a change there must not cost a reinstall. */
const NOT_PACKAGE_SOURCES = /^(test|bench|examples|\.ci)\//;
const LOCK_STALE_MS = 3 * 60_000;
/** Installs of other source states unused this long go (a test file uses its install for a minute or two). */
const PRUNE_AFTER_MS = 30 * 60_000;

function installedVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf-8')) as {
    version: string;
  };
  return manifest.version;
}

/**
 * The versions the e2e workspaces get: the repository's own, or the nx named by
 * FABER_E2E_NX_VERSION (`FABER_E2E_NX_VERSION=23.3.2 npx vitest run test/e2e`), to test the oldest nx
 * the peerDependencies range allows. @nx/devkit stays the one the package depends on.
 */
export const NX_VERSION = process.env['FABER_E2E_NX_VERSION'] || installedVersion('nx');
export const DEVKIT_VERSION = installedVersion('@nx/devkit');

/** Tracked and untracked (not ignored) files of the package, as they are on disk now. */
function packageSources(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: REPO,
    encoding: 'utf-8',
  });
  return [...new Set(listed.split('\0'))]
    .filter((file) => file !== '' && !NOT_PACKAGE_SOURCES.test(file) && existsSync(path.join(REPO, file)))
    .sort();
}

function sourceKey(files: readonly string[]): string {
  const hash = createHash('sha256').update(`nx ${NX_VERSION} devkit ${DEVKIT_VERSION}\n`);
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(path.join(REPO, file)))
      .update('\0');
  return hash.digest('hex').slice(0, 16);
}

function run(command: string, args: readonly string[], cwd: string): string {
  try {
    // This Node first on PATH: the package's build runs `node scripts/*.ts`, which needs type stripping.
    const env = {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
      npm_config_update_notifier: 'false',
    };
    return execFileSync(command, args, { cwd, encoding: 'utf-8', stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}:\n${failed.stdout ?? ''}\n${failed.stderr ?? failed.message}`,
      { cause: error },
    );
  }
}

/** Copies the sources to a staging directory and packs there, so the build never writes into the shared tree. */
function packSnapshot(files: readonly string[], directory: string): string {
  const staging = path.join(directory, 'staging');
  for (const file of files) {
    mkdirSync(path.dirname(path.join(staging, file)), { recursive: true });
    cpSync(path.join(REPO, file), path.join(staging, file));
  }
  symlinkSync(path.join(REPO, 'node_modules'), path.join(staging, 'node_modules'), 'dir');
  const output = run('npm', ['pack', '--json', '--pack-destination', directory], staging);
  const packed = JSON.parse(output.slice(output.indexOf('['))) as Array<{ filename: string }>;
  const filename = packed[0]?.filename;
  if (!filename) throw new Error(`npm pack printed no file name:\n${output}`);
  rmSync(staging, { recursive: true, force: true });
  return path.join(directory, filename);
}

function install(tarball: string, directory: string): void {
  const installRoot = path.join(directory, 'install');
  mkdirSync(installRoot, { recursive: true });
  writeFileSync(path.join(installRoot, 'package.json'), JSON.stringify({ name: 'faber-e2e-install', private: true }));
  run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      `nx@${NX_VERSION}`,
      `@nx/devkit@${DEVKIT_VERSION}`,
      tarball,
    ],
    installRoot,
  );
}

/** Removes installs of other source states (about 100 MB each) that nobody has used for a while. */
function pruneOldInstalls(current: string): void {
  for (const name of readdirSync(CACHE_ROOT)) {
    const entry = path.join(CACHE_ROOT, name);
    if (name === current || name.startsWith(`${current}.`)) continue;
    const modified = statSync(entry, { throwIfNoEntry: false })?.mtimeMs;
    if (modified !== undefined && Date.now() - modified > PRUNE_AFTER_MS)
      rmSync(entry, { recursive: true, force: true });
  }
}

function acquireLock(lock: string): boolean {
  try {
    mkdirSync(lock);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const held = statSync(lock, { throwIfNoEntry: false });
    // A holder killed mid-install leaves its lock behind.
    if (held && Date.now() - held.mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
    return false;
  }
}

export interface PluginInstall {
  /** node_modules holding nx, @nx/devkit and the packed @faber-db/nx with its dependencies. */
  nodeModules: string;
  /** The packed tarball the install came from. */
  tarball: string;
}

/**
 * Packs and installs once per source state; concurrent callers (other test files) wait for the
 * first one. Throws the build's or npm's output when either fails.
 */
export async function pluginInstall(): Promise<PluginInstall> {
  const files = packageSources();
  const key = sourceKey(files);
  const directory = path.join(CACHE_ROOT, key);
  const ready = path.join(directory, 'ready.json');
  const lock = `${directory}.lock`;
  mkdirSync(CACHE_ROOT, { recursive: true });
  while (!existsSync(ready)) {
    if (acquireLock(lock)) {
      try {
        if (existsSync(ready)) break;
        rmSync(directory, { recursive: true, force: true });
        mkdirSync(directory, { recursive: true });
        const tarball = packSnapshot(files, directory);
        install(tarball, directory);
        writeFileSync(ready, JSON.stringify({ tarball }));
      } finally {
        rmSync(lock, { recursive: true, force: true });
      }
      pruneOldInstalls(key);
      break;
    }
    await sleep(500);
  }
  const { tarball } = JSON.parse(readFileSync(ready, 'utf-8')) as { tarball: string };
  const now = new Date();
  utimesSync(directory, now, now);
  return { nodeModules: path.join(directory, 'install', 'node_modules'), tarball };
}
