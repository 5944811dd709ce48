/**
 * A throwaway Nx workspace that uses this repository as its installed @faber-db/nx (the way
 * scripts/demo.ts does it), with one project per benchmarked database.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface BenchProject {
  name: string;
  provider: 'postgresql' | 'mysql' | 'sqlite';
  /** Environment name → the variable that holds its connection URL. */
  environments: Record<string, string>;
  /** backup.directory, when the project should not share the workspace's catalog. */
  backupDirectory?: string;
  /** Extra settings per environment (e.g. `format`). */
  environmentSettings?: Record<string, Record<string, unknown>>;
  /** backup.storage (e.g. an S3 bucket); absent = backup.directory on local disk. */
  storage?: Record<string, unknown>;
}

export interface BenchWorkspace {
  root: string;
  projectRoot(name: string): string;
  backupRoot: string;
  remove(): void;
}

const DEFAULT_BACKUP_DIRECTORY = '.fractary/plugins/faber-db/backups';

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Default settings throughout: no format, compression or level is set, as a new user would have it. */
function faberConfig(project: BenchProject): unknown {
  const environments = Object.fromEntries(
    Object.entries(project.environments).map(([name, variable]) => [
      name,
      { connection_string_env: variable, ...project.environmentSettings?.[name] },
    ]),
  );
  return {
    schema_version: '1.0',
    database: { provider: project.provider, hosting: 'local', migration_tool: 'prisma' },
    environments,
    backup: {
      directory: project.backupDirectory ?? DEFAULT_BACKUP_DIRECTORY,
      ...(project.storage ? { storage: project.storage } : {}),
    },
    migrations: { table: '_prisma_migrations' },
    safety: { protected_environments: [] },
  };
}

function projectJson(project: BenchProject): unknown {
  const configurations = Object.fromEntries(
    Object.keys(project.environments).map((name) => [name, { environment: name }]),
  );
  return {
    name: project.name,
    projectType: 'application',
    targets: {
      backup: { executor: '@faber-db/nx:backup', cache: false, configurations },
      'list-backups': { executor: '@faber-db/nx:list-backups', cache: false, configurations },
      // Nx's own start-up and task run with nothing to do: what `nx run` costs before our executor.
      noop: { executor: 'nx:noop', cache: false },
    },
  };
}

export function createBenchWorkspace(repo: string, projects: readonly BenchProject[]): BenchWorkspace {
  const root = mkdtempSync(path.join(tmpdir(), 'faber-bench-'));
  writeJson(path.join(root, 'nx.json'), { analytics: false, useDaemonProcess: false });
  writeJson(path.join(root, 'package.json'), { name: 'faber-bench-workspace', private: true });
  // As the configuration generator leaves it: backups are not workspace files Nx should hash.
  writeFileSync(path.join(root, '.gitignore'), '.fractary/plugins/faber-db/*/\nnode_modules/\n.nx/\n');
  // The plugin is this repository, as an installed package would be; nx is the repository's own.
  const link = path.join(root, 'node_modules', '@faber-db', 'nx');
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(repo, link, 'dir');
  symlinkSync(path.join(repo, 'node_modules', 'nx'), path.join(root, 'node_modules', 'nx'), 'dir');
  for (const project of projects) {
    const projectRoot = path.join(root, 'apps', project.name);
    writeJson(path.join(projectRoot, 'project.json'), projectJson(project));
    writeJson(path.join(projectRoot, '.fractary', 'plugins', 'faber-db', 'config.json'), faberConfig(project));
  }
  return {
    root,
    projectRoot: (name) => path.join('apps', name),
    backupRoot: path.join(root, DEFAULT_BACKUP_DIRECTORY),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The environment Nx should see: none of the caller's NX_* settings, no daemon, no cloud, no TUI. */
export function nxEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(base)) if (!key.startsWith('NX_')) env[key] = value;
  return { ...env, ...extra, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', NX_SKIP_NX_CACHE: 'true' };
}
