import { readdir, readlink, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { mapWithConcurrency } from '../catalog/concurrency.ts';
import { MANIFEST_SUFFIX, manifestPathFor, readManifest } from '../catalog/manifest.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { projectSegment } from './context.ts';
import { backupFilePath, inScope, isInside, type BackupScope } from './select.ts';

/**
 * Files and entries that do not match up, and what cleanup-backups --yes does about each:
 * - entry-without-file: a catalog entry whose file is gone → the entry is removed;
 * - file-with-manifest: a backup file and its manifest but no entry → verified and re-added;
 * - file-without-manifest: a backup file nobody describes → deleted;
 * - stale-manifest: a manifest whose backup file is gone → deleted;
 * - leftover: a `.partial` (interrupted backup) or `.tmp-` (interrupted atomic write) → deleted;
 * - invalid-manifest: a backup file whose manifest cannot be read → only reported.
 */
export type OrphanKind = 'entry-without-file' | 'file-with-manifest' | 'file-without-manifest' | 'stale-manifest' | 'leftover' | 'invalid-manifest';

export interface Orphan {
  kind: OrphanKind;
  /** Absolute path of the file, directory or manifest. */
  path: string;
  backupId: string | null;
  environment: string;
  /** Why --yes leaves it alone (too recent, still open, unreadable manifest). */
  hold: string | undefined;
  /** The catalog entry (entry-without-file) or the manifest's entry (file-with-manifest). */
  entry: BackupEntry | undefined;
}

/**
 * A backup being written or recorded right now looks like an orphan for a moment (the file is
 * renamed into place before its entry is saved): anything touched this recently is left alone.
 */
export const ORPHAN_MIN_AGE_MS = 10 * 60 * 1000;

/** `<id>.<ext>`, compressed (`.zst`, `.gz`) and encrypted (`.age`): up to three extensions. */
const BACKUP_FILE = /^(backup-\d{8}-\d{6}(?:-[a-z0-9]+)*)\.[a-z0-9]+(?:\.[a-z0-9]+){0,2}$/;
const BACKUP_DIRECTORY = /^(backup-\d{8}-\d{6}(?:-[a-z0-9]+)*)$/;
const STAT_CONCURRENCY = 32;

export interface OrphanScanInput {
  /** The whole catalog: a file another project's entry names is never an orphan. */
  entries: readonly BackupEntry[];
  scope: BackupScope;
  backupRoot: string;
  workspaceRoot: string;
  nowMs?: number;
}

export async function findOrphans(input: OrphanScanInput): Promise<Orphan[]> {
  const catalog = { backupRoot: input.backupRoot, workspaceRoot: input.workspaceRoot };
  const nowMs = input.nowMs ?? Date.now();
  const missing = await entriesWithoutFile(input.entries.filter((entry) => inScope(entry, input.scope)), catalog);
  const knownFiles = new Set(input.entries.map((entry) => path.resolve(input.workspaceRoot, entry.file_path)));
  const knownManifests = new Set(input.entries.map((entry) => manifestPathFor(entry, input.workspaceRoot)));
  const found: Orphan[] = missing.map((entry) => ({ kind: 'entry-without-file', path: backupFilePath(catalog, entry), backupId: entry.backup_id, environment: entry.environment, hold: undefined, entry }));
  const look: Look = { knownFiles, knownManifests, workspaceRoot: input.workspaceRoot, nowMs, openFiles: lazy(openFilesOfAllProcesses) };
  for (const [environment, directory] of await environmentDirectories(input)) {
    found.push(...(await orphansIn(directory, environment, look)));
  }
  return found;
}

/** Entries of the scope whose file (or directory) does not exist. */
export async function entriesWithoutFile(entries: readonly BackupEntry[], catalog: { backupRoot: string; workspaceRoot: string }): Promise<BackupEntry[]> {
  const exists = await mapWithConcurrency(entries, STAT_CONCURRENCY, (entry) =>
    stat(backupFilePath(catalog, entry)).then(
      () => true,
      (error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? false : Promise.reject(error)),
    ),
  );
  return entries.filter((_entry, index) => !exists[index]);
}

async function environmentDirectories(input: OrphanScanInput): Promise<Array<[string, string]>> {
  const projectDirectory = path.join(input.backupRoot, projectSegment(input.scope.project));
  if (input.scope.environment !== undefined) return [[input.scope.environment, path.join(projectDirectory, input.scope.environment)]];
  const children = await readdir(projectDirectory, { withFileTypes: true }).catch(ignoreMissing);
  return children.filter((child) => child.isDirectory()).map((child) => [child.name, path.join(projectDirectory, child.name)]);
}

function ignoreMissing(error: NodeJS.ErrnoException): [] {
  if (error.code === 'ENOENT') return [];
  throw error;
}

interface Look {
  knownFiles: Set<string>;
  knownManifests: Set<string>;
  workspaceRoot: string;
  nowMs: number;
  openFiles: () => Promise<string[]>;
}

async function orphansIn(directory: string, environment: string, look: Look): Promise<Orphan[]> {
  const { knownFiles, knownManifests, workspaceRoot } = look;
  const children = await readdir(directory, { withFileTypes: true }).catch(ignoreMissing);
  const names = new Set(children.map((child) => child.name));
  const orphans: Orphan[] = [];
  const unknownBackupIds = new Set<string>();
  const orphan = async (kind: OrphanKind, file: string, backupId: string | null, entry?: BackupEntry, hold?: string): Promise<Orphan> => ({
    kind,
    path: file,
    backupId,
    environment,
    hold: hold ?? (await recentOrOpen(file, look)),
    entry,
  });
  for (const child of children) {
    const file = path.join(directory, child.name);
    if (child.name.endsWith('.partial') || child.name.includes('.tmp-')) {
      orphans.push(await orphan('leftover', file, idIn(child.name)));
      continue;
    }
    if (child.name.endsWith(MANIFEST_SUFFIX) || knownFiles.has(file)) continue;
    const backupId = (child.isDirectory() ? BACKUP_DIRECTORY : BACKUP_FILE).exec(child.name)?.[1];
    if (backupId === undefined || !(child.isFile() || child.isDirectory())) continue;
    unknownBackupIds.add(backupId);
    const manifestName = `${backupId}${MANIFEST_SUFFIX}`;
    if (!names.has(manifestName) || knownManifests.has(path.join(directory, manifestName))) {
      orphans.push(await orphan('file-without-manifest', file, backupId));
      continue;
    }
    const described = await manifestFor(path.join(directory, manifestName), file, workspaceRoot);
    if (described.entry) orphans.push(await orphan('file-with-manifest', file, backupId, described.entry));
    else orphans.push(await orphan('invalid-manifest', file, backupId, undefined, `its manifest ${manifestName} cannot be used (${described.problem})`));
  }
  for (const child of children) {
    const file = path.join(directory, child.name);
    if (!child.name.endsWith(MANIFEST_SUFFIX) || knownManifests.has(file)) continue;
    const backupId = child.name.slice(0, -MANIFEST_SUFFIX.length);
    if (!unknownBackupIds.has(backupId)) orphans.push(await orphan('stale-manifest', file, backupId));
  }
  return orphans;
}

async function manifestFor(manifestPath: string, file: string, workspaceRoot: string): Promise<{ entry?: BackupEntry; problem?: string }> {
  try {
    const entry = await readManifest(manifestPath);
    if (path.resolve(workspaceRoot, entry.file_path) !== file) return { problem: `it describes ${entry.file_path}` };
    return { entry };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}

function idIn(name: string): string | null {
  return /^(backup-\d{8}-\d{6}(?:-[a-z0-9]+)*)/.exec(name)?.[1] ?? null;
}

/** Why an orphan must not be touched yet: modified recently, or (Linux) held open by a process. */
async function recentOrOpen(file: string, look: Look): Promise<string | undefined> {
  const modified = await newestModification(file);
  if (modified === undefined) return 'it disappeared while being looked at';
  if (look.nowMs - modified < ORPHAN_MIN_AGE_MS) return `modified less than ${ORPHAN_MIN_AGE_MS / 60_000} minutes ago (a backup may be writing or recording it)`;
  const open = await look.openFiles();
  if (open.some((target) => target === file || isInside(file, target))) return 'a running process has it open';
  return undefined;
}

/** For a directory, the newest of it and its files: pg_dump -Fd keeps writing files inside. */
async function newestModification(file: string): Promise<number | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (!info) return undefined;
  if (!info.isDirectory()) return info.mtimeMs;
  const children = await readdir(file).catch(() => []);
  const times = await Promise.all(children.map((name) => stat(path.join(file, name)).then((child) => child.mtimeMs, () => 0)));
  return Math.max(info.mtimeMs, ...times);
}

/**
 * Linux only (elsewhere the age rule alone decides): the files that processes we can see hold
 * open, read from the /proc/<pid>/fd links. A backup that stalls for minutes (pg_dump waiting for
 * a lock) still holds its .partial open.
 */
async function openFilesOfAllProcesses(): Promise<string[]> {
  if (process.platform !== 'linux') return [];
  const targets: string[] = [];
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target.startsWith('/')) targets.push(target);
    }
  }
  return targets;
}

function lazy<T>(compute: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= compute());
}

/** Deletes an orphan file or directory found under the backup root. */
export async function removeOrphanFile(file: string, backupRoot: string): Promise<void> {
  // Paths come from a directory listing under the backup root, but never delete anything outside it.
  if (!isInside(backupRoot, file)) throw new Error(`refusing to delete ${file}: outside ${backupRoot}`);
  await rm(file, { recursive: true, force: true });
}
