import path from 'node:path';
import { FaberError } from '../output/errors.ts';
import { LocalStorage } from '../storage/local.ts';
import { baseName, parentKey, type Storage } from '../storage/storage.ts';
import { mapWithConcurrency } from './concurrency.ts';
import { describeIssues } from './describe-issues.ts';
import { sortEntries } from './order.ts';
import { BACKUP_ID_AT_START } from '../util/ids.ts';
import { type BackupEntry, manifestSchema } from './schema.ts';

export const MANIFEST_SUFFIX = '.manifest.json';

/** `<project>/<environment>`, with room for scoped project names such as `@org/app`. */
const MAX_SCAN_DEPTH = 6;
const READ_CONCURRENCY = 32;

export interface ManifestProblem {
  path: string;
  message: string;
}

export interface ManifestScan {
  entries: BackupEntry[];
  problems: ManifestProblem[];
}

/** `<dir of the backup file>/<id>.manifest.json`, absolute. `file_path` is relative to the workspace root. */
export function manifestPathFor(entry: Pick<BackupEntry, 'backup_id' | 'file_path'>, workspaceRoot: string): string {
  const backupDir = path.dirname(path.resolve(workspaceRoot, entry.file_path));
  return path.join(backupDir, `${entry.backup_id}${MANIFEST_SUFFIX}`);
}

export function serializeManifest(entry: BackupEntry): string {
  return `${JSON.stringify({ schema_version: '1.0', backup: entry }, null, 2)}\n`;
}

/** The key of the entry's manifest (beside its backup), or undefined when the backup is not in `storage`. */
export function manifestKeyFor(
  storage: Storage,
  entry: Pick<BackupEntry, 'backup_id' | 'file_path'>,
): string | undefined {
  const dataKey = storage.keyOf(entry.file_path);
  return dataKey === undefined ? undefined : `${parentKey(dataKey)}${entry.backup_id}${MANIFEST_SUFFIX}`;
}

/** How a key is named in messages: its path for a local store, else its URI. */
export function displayKey(storage: Storage, key: string): string {
  return storage.localPath(key) ?? storage.locationOf(key);
}

/** Atomically writes the entry's manifest; the backup's directory must already exist. */
export async function writeManifest(entry: BackupEntry, workspaceRoot: string): Promise<string> {
  const manifestPath = manifestPathFor(entry, workspaceRoot);
  await new LocalStorage(path.dirname(manifestPath), workspaceRoot).put(
    path.basename(manifestPath),
    serializeManifest(entry),
    { parents: 'require' },
  );
  return manifestPath;
}

/** Reads and validates one manifest; a missing, garbled or invalid file is a CATALOG_INVALID error. */
export async function readManifest(manifestPath: string): Promise<BackupEntry> {
  const directory = new LocalStorage(path.dirname(manifestPath), path.dirname(manifestPath));
  return readManifestAt(directory, path.basename(manifestPath));
}

export async function readManifestAt(storage: Storage, key: string): Promise<BackupEntry> {
  const where = displayKey(storage, key);
  let text: string;
  try {
    const data = await storage.read(key);
    if (data === undefined)
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${where}'`), { code: 'ENOENT' });
    text = data.toString('utf8');
  } catch (error) {
    throw new FaberError('CATALOG_INVALID', `Cannot read the manifest ${where}: ${(error as Error).message}`, {
      cause: error,
      result: { manifest: where },
    });
  }
  return parseManifest(where, text);
}

export function parseManifest(manifestPath: string, text: string): BackupEntry {
  const invalid = (reason: string, cause?: unknown) =>
    new FaberError('CATALOG_INVALID', `The manifest ${manifestPath} is invalid: ${reason}`, {
      cause,
      result: { manifest: manifestPath },
    });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw invalid(`not JSON (${(error as Error).message})`, error);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw invalid(describeIssues(parsed.error));
  const expectedName = `${parsed.data.backup.backup_id}${MANIFEST_SUFFIX}`;
  if (path.basename(manifestPath) !== expectedName) {
    throw invalid(`it describes ${parsed.data.backup.backup_id} but is named ${path.basename(manifestPath)}`);
  }
  return parsed.data.backup;
}

/**
 * Finds every manifest under `backupRoot` (normally `<project>/<environment>/<id>.manifest.json`)
 * and returns the valid entries, oldest first. Invalid manifests and duplicate ids are reported
 * as problems, never thrown: one bad file must not hide every other backup.
 */
export async function scanManifests(backupRoot: string): Promise<ManifestScan> {
  return scanManifestsIn(new LocalStorage(backupRoot, backupRoot));
}

export async function scanManifestsIn(storage: Storage): Promise<ManifestScan> {
  // An object store lists everything under a prefix in one go; a directory is walked.
  const keys =
    storage.kind === 'local'
      ? await findManifestKeys(storage, '', 0)
      : (await storage.list('')).map((object) => object.key).filter((key) => baseName(key).endsWith(MANIFEST_SUFFIX));
  const results = await mapWithConcurrency(keys, READ_CONCURRENCY, async (key) => {
    const file = displayKey(storage, key);
    try {
      return { file, entry: await readManifestAt(storage, key) };
    } catch (error) {
      return { file, problem: (error as Error).message };
    }
  });
  const entries: BackupEntry[] = [];
  const problems: ManifestProblem[] = [];
  const seen = new Map<string, string>();
  for (const result of results) {
    if (result.entry === undefined) {
      problems.push({ path: result.file, message: result.problem });
      continue;
    }
    const firstPath = seen.get(result.entry.backup_id);
    if (firstPath !== undefined) {
      problems.push({ path: result.file, message: `${result.entry.backup_id} is already described by ${firstPath}` });
      continue;
    }
    seen.set(result.entry.backup_id, result.file);
    entries.push(result.entry);
  }
  return { entries: sortEntries(entries), problems };
}

async function findManifestKeys(storage: Storage, dirKey: string, depth: number): Promise<string[]> {
  const children = await storage.list(dirKey, { shallow: true });
  const found: string[] = [];
  const subdirectories: string[] = [];
  for (const child of children) {
    const name = baseName(child.key);
    if (!child.directory && name.endsWith(MANIFEST_SUFFIX)) found.push(child.key);
    // Directory-format dumps and `.partial` directories are named after their id: never a project or environment.
    else if (child.directory && depth < MAX_SCAN_DEPTH && !BACKUP_ID_AT_START.test(name))
      subdirectories.push(`${child.key}/`);
  }
  const nested = await Promise.all(subdirectories.map((sub) => findManifestKeys(storage, sub, depth + 1)));
  return found.sort().concat(...nested);
}
