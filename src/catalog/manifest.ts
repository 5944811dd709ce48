import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { FaberError } from '../output/errors.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { mapWithConcurrency } from './concurrency.ts';
import { describeIssues } from './describe-issues.ts';
import { sortEntries } from './order.ts';
import { type BackupEntry, manifestSchema } from './schema.ts';

export const MANIFEST_SUFFIX = '.manifest.json';

/** Directory-format dumps and `.partial` files are named after their id: never a project or environment. */
const BACKUP_NAME = /^backup-\d{8}-\d{6}/;
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

/** Atomically writes the entry's manifest; the backup's directory must already exist. */
export async function writeManifest(entry: BackupEntry, workspaceRoot: string): Promise<string> {
  const manifestPath = manifestPathFor(entry, workspaceRoot);
  await writeFileAtomic(manifestPath, serializeManifest(entry));
  return manifestPath;
}

/** Reads and validates one manifest; a missing, garbled or invalid file is a CATALOG_INVALID error. */
export async function readManifest(manifestPath: string): Promise<BackupEntry> {
  let text: string;
  try {
    text = await fs.readFile(manifestPath, 'utf8');
  } catch (error) {
    throw new FaberError('CATALOG_INVALID', `Cannot read the manifest ${manifestPath}: ${(error as Error).message}`, {
      cause: error,
      result: { manifest: manifestPath },
    });
  }
  return parseManifest(manifestPath, text);
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
  const files = await findManifestFiles(backupRoot, 0);
  const results = await mapWithConcurrency(files, READ_CONCURRENCY, async (file) => {
    try {
      return { file, entry: await readManifest(file) };
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

async function findManifestFiles(dir: string, depth: number): Promise<string[]> {
  let children: Dirent[];
  try {
    children = await fs.readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && depth === 0) return [];
    throw error;
  }
  const found: string[] = [];
  const subdirectories: string[] = [];
  for (const child of children) {
    const childPath = path.join(dir, child.name);
    if (child.isFile() && child.name.endsWith(MANIFEST_SUFFIX)) found.push(childPath);
    else if (child.isDirectory() && depth < MAX_SCAN_DEPTH && !BACKUP_NAME.test(child.name)) subdirectories.push(childPath);
  }
  const nested = await Promise.all(subdirectories.map((sub) => findManifestFiles(sub, depth + 1)));
  return found.sort().concat(...nested);
}
