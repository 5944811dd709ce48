import { readdir, readlink } from 'node:fs/promises';
import { mapWithConcurrency } from '../catalog/concurrency.ts';
import { displayKey, MANIFEST_SUFFIX, manifestKeyFor, readManifestAt } from '../catalog/manifest.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { baseName, type PendingUpload, type Storage, type StoredObject } from '../storage/storage.ts';
import { projectSegment } from './context.ts';
import { backupKey, inScope, isInside, type BackupScope } from './select.ts';
import { BACKUP_ID_AT_START, BACKUP_ID_SOURCE } from '../util/ids.ts';

/**
 * Files and entries that do not match up, and what cleanup-backups --yes does about each:
 * - entry-without-file: a catalog entry whose file is gone → the entry is removed;
 * - file-with-manifest: a backup file and its manifest but no entry → verified and re-added;
 * - file-without-manifest: a backup file nobody describes → deleted;
 * - stale-manifest: a manifest whose backup file is gone → deleted;
 * - leftover: a `.partial` (interrupted backup) or `.tmp-` (interrupted atomic write) → deleted;
 * - invalid-manifest: a backup file whose manifest cannot be read → only reported.
 */
export type OrphanKind =
  | 'entry-without-file'
  | 'file-with-manifest'
  | 'file-without-manifest'
  | 'stale-manifest'
  | 'leftover'
  | 'invalid-manifest';

export interface Orphan {
  kind: OrphanKind;
  /** The file, directory or manifest: its key, and its path (local) or URI (remote) for messages. */
  key: string;
  path: string;
  /** As the catalog would record it (relative to the workspace root, or a URI). */
  location: string;
  backupId: string | null;
  environment: string;
  /** An unfinished multipart upload (object stores): aborted instead of deleted. */
  upload?: PendingUpload | undefined;
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
const BACKUP_FILE = new RegExp(`^(${BACKUP_ID_SOURCE})\\.[a-z0-9]+(?:\\.[a-z0-9]+){0,2}$`);
const BACKUP_DIRECTORY = new RegExp(`^(${BACKUP_ID_SOURCE})$`);
const STAT_CONCURRENCY = 32;

export interface OrphanScanInput {
  /** The whole catalog: a file another project's entry names is never an orphan. */
  entries: readonly BackupEntry[];
  scope: BackupScope;
  storage: Storage;
  nowMs?: number;
}

export async function findOrphans(input: OrphanScanInput): Promise<Orphan[]> {
  const { storage } = input;
  const nowMs = input.nowMs ?? Date.now();
  const missing = await entriesWithoutFile(
    input.entries.filter((entry) => inScope(entry, input.scope)),
    storage,
  );
  const knownFiles = new Set(input.entries.map((entry) => storage.keyOf(entry.file_path)));
  const knownManifests = new Set(input.entries.map((entry) => manifestKeyFor(storage, entry)));
  const found: Orphan[] = missing.map((entry) => {
    const key = backupKey(storage, entry);
    return {
      kind: 'entry-without-file',
      key,
      path: displayKey(storage, key),
      location: storage.locationOf(key),
      backupId: entry.backup_id,
      environment: entry.environment,
      hold: undefined,
      entry,
    };
  });
  const facts: ScanFacts = { storage, knownFiles, knownManifests, nowMs, openFiles: lazy(openFilesOfAllProcesses) };
  for (const [environment, directory] of await environmentDirectories(input)) {
    found.push(...(await orphansIn(directory, environment, facts)));
  }
  found.push(...(await pendingUploadsOf(input, nowMs)));
  return found;
}

/** Uploads a killed backup left unfinished: never visible as objects, but stored (and billed) until aborted. */
async function pendingUploadsOf(input: OrphanScanInput, nowMs: number): Promise<Orphan[]> {
  const { storage, scope } = input;
  if (!storage.pendingUploads) return [];
  const prefix = `${projectSegment(scope.project)}/${scope.environment === undefined ? '' : `${scope.environment}/`}`;
  return (await storage.pendingUploads(prefix)).map((upload) => ({
    kind: 'leftover',
    key: upload.key,
    path: `${storage.locationOf(upload.key)} (unfinished upload)`,
    location: storage.locationOf(upload.key),
    backupId: idIn(baseName(upload.key)),
    // Keys are <project>/<environment>/<file>, the project one segment (projectSegment).
    environment: upload.key.split('/')[1] ?? '',
    hold:
      nowMs - upload.initiatedMs < ORPHAN_MIN_AGE_MS
        ? `started less than ${ORPHAN_MIN_AGE_MS / 60_000} minutes ago (a backup may still be uploading it)`
        : undefined,
    entry: undefined,
    upload,
  }));
}

/** Entries of the scope whose file (or directory) does not exist. */
export async function entriesWithoutFile(entries: readonly BackupEntry[], storage: Storage): Promise<BackupEntry[]> {
  const exists = await mapWithConcurrency(
    entries,
    STAT_CONCURRENCY,
    async (entry) => (await storage.stat(backupKey(storage, entry))) !== undefined,
  );
  return entries.filter((_entry, index) => !exists[index]);
}

async function environmentDirectories(input: OrphanScanInput): Promise<Array<[string, string]>> {
  const projectDirectory = `${projectSegment(input.scope.project)}/`;
  if (input.scope.environment !== undefined)
    return [[input.scope.environment, `${projectDirectory}${input.scope.environment}/`]];
  const children = await input.storage.list(projectDirectory, { shallow: true });
  return children.filter((child) => child.directory).map((child) => [baseName(child.key), `${child.key}/`]);
}

/** What the orphan scan judges each stored object against: the catalog's files and manifests, the time, open files. */
interface ScanFacts {
  storage: Storage;
  knownFiles: Set<string | undefined>;
  knownManifests: Set<string | undefined>;
  nowMs: number;
  openFiles: () => Promise<string[]>;
}

async function orphansIn(directory: string, environment: string, facts: ScanFacts): Promise<Orphan[]> {
  const { storage, knownFiles, knownManifests } = facts;
  const children = await storage.list(directory, { shallow: true });
  const names = new Set(children.map((child) => baseName(child.key)));
  const orphans: Orphan[] = [];
  const unknownBackupIds = new Set<string>();
  const orphan = async (
    kind: OrphanKind,
    child: StoredObject,
    backupId: string | null,
    entry?: BackupEntry,
    hold?: string,
  ): Promise<Orphan> => ({
    kind,
    key: child.key,
    path: displayKey(storage, child.key),
    location: storage.locationOf(child.key),
    backupId,
    environment,
    hold: hold ?? (await recentOrOpen(child, facts)),
    entry,
  });
  for (const child of children) {
    const name = baseName(child.key);
    if (name.endsWith('.partial') || name.includes('.tmp-')) {
      orphans.push(await orphan('leftover', child, idIn(name)));
      continue;
    }
    if (name.endsWith(MANIFEST_SUFFIX) || knownFiles.has(child.key)) continue;
    const backupId = (child.directory ? BACKUP_DIRECTORY : BACKUP_FILE).exec(name)?.[1];
    if (backupId === undefined) continue;
    unknownBackupIds.add(backupId);
    const manifestName = `${backupId}${MANIFEST_SUFFIX}`;
    if (!names.has(manifestName) || knownManifests.has(`${directory}${manifestName}`)) {
      orphans.push(await orphan('file-without-manifest', child, backupId));
      continue;
    }
    const described = await manifestFor(storage, `${directory}${manifestName}`, child.key);
    if (described.entry) orphans.push(await orphan('file-with-manifest', child, backupId, described.entry));
    else
      orphans.push(
        await orphan(
          'invalid-manifest',
          child,
          backupId,
          undefined,
          `its manifest ${manifestName} cannot be used (${described.problem})`,
        ),
      );
  }
  for (const child of children) {
    const name = baseName(child.key);
    if (!name.endsWith(MANIFEST_SUFFIX) || knownManifests.has(child.key)) continue;
    const backupId = name.slice(0, -MANIFEST_SUFFIX.length);
    if (!unknownBackupIds.has(backupId)) orphans.push(await orphan('stale-manifest', child, backupId));
  }
  return orphans;
}

async function manifestFor(
  storage: Storage,
  manifestKey: string,
  dataKey: string,
): Promise<{ entry?: BackupEntry; problem?: string }> {
  try {
    const entry = await readManifestAt(storage, manifestKey);
    if (storage.keyOf(entry.file_path) !== dataKey) return { problem: `it describes ${entry.file_path}` };
    return { entry };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}

function idIn(name: string): string | null {
  return BACKUP_ID_AT_START.exec(name)?.[1] ?? null;
}

/** Why an orphan must not be touched yet: modified recently, or (Linux) held open by a process. */
async function recentOrOpen(child: StoredObject, facts: ScanFacts): Promise<string | undefined> {
  const modified = await newestModification(facts.storage, child.key);
  if (modified === undefined) return 'it disappeared while being looked at';
  if (facts.nowMs - modified < ORPHAN_MIN_AGE_MS)
    return `modified less than ${ORPHAN_MIN_AGE_MS / 60_000} minutes ago (a backup may be writing or recording it)`;
  const file = facts.storage.localPath(child.key);
  if (file === undefined) return undefined;
  const open = await facts.openFiles();
  if (open.some((target) => target === file || isInside(file, target))) return 'a running process has it open';
  return undefined;
}

/** For a directory, the newest of it and its files: pg_dump -Fd keeps writing files inside. */
async function newestModification(storage: Storage, key: string): Promise<number | undefined> {
  const info = await storage.stat(key).catch(() => undefined);
  if (!info) return undefined;
  if (!info.directory) return info.modifiedMs;
  const children = await storage.list(`${key}/`, { shallow: true }).catch(() => []);
  return Math.max(info.modifiedMs, ...children.map((child) => child.modifiedMs));
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

/** Deletes an orphan file or directory found in the store (keys never leave it). */
export async function removeOrphanFile(orphan: Orphan, storage: Storage): Promise<void> {
  if (orphan.upload) await storage.abortUpload?.(orphan.upload);
  else await storage.delete(orphan.key);
}
