import path from 'node:path';
import { FaberError, isFaberError } from '../output/errors.ts';
import { LocalStorage } from '../storage/local.ts';
import { baseName, type Storage } from '../storage/storage.ts';
import { mapWithConcurrency } from './concurrency.ts';
import { describeIssues } from './describe-issues.ts';
import { type LockRef, withLock } from './lock.ts';
import { faultPoint } from '../util/fault.ts';
import { manifestKeyFor, scanManifestsIn, serializeManifest } from './manifest.ts';
import { sortEntries } from './order.ts';
import { type BackupEntry, backupEntrySchema, catalogSchema } from './schema.ts';

export const CATALOG_FILE_NAME = 'backups.json';
const MANIFEST_WRITE_CONCURRENCY = 8;

export interface CatalogOptions {
  /** Absolute path of the backup directory; the catalog is `<backupRoot>/backups.json`. */
  backupRoot: string;
  /** Absolute path of the workspace root: entries' `file_path` is relative to it. */
  workspaceRoot: string;
  lockTimeoutMs?: number;
  /** Where the catalog, manifests and backups are kept; defaults to the local directory `backupRoot`. */
  storage?: Storage;
  /** Where `update()` reports a rebuild of a missing or broken catalog. Defaults to stderr. */
  onWarning?: (message: string) => void;
}

export interface CatalogReadResult {
  entries: BackupEntry[];
  /** True when the catalog was missing or broken and was rebuilt from the sidecar manifests. */
  rebuilt: boolean;
  /** Messages for the user: the rebuild, and manifests that could not be used. */
  warnings: string[];
}

/** What an entry was before a mutation: to see whether it changed, and where its manifest was. */
interface EntrySnapshot {
  json: string;
  file_path: string;
}

type LoadedCatalog =
  { kind: 'valid'; entries: BackupEntry[] } | { kind: 'missing' } | { kind: 'invalid'; reason: string };

/**
 * The list of every backup (`backups.json`) and the sidecar manifests beside the backups.
 * Writes are serialised across processes with a lock file and replace the catalog atomically, so
 * parallel Nx tasks never lose an entry; every write keeps each entry's manifest in step, so a
 * lost or broken catalog can be rebuilt from them.
 */
export class Catalog {
  readonly backupRoot: string;
  readonly workspaceRoot: string;
  readonly catalogPath: string;
  readonly lockPath: string;
  readonly storage: Storage;
  readonly #lock: LockRef;
  readonly #lockTimeoutMs: number | undefined;
  readonly #onWarning: (message: string) => void;

  constructor(options: CatalogOptions) {
    if (!path.isAbsolute(options.backupRoot) || !path.isAbsolute(options.workspaceRoot)) {
      throw new FaberError('INTERNAL_ERROR', 'Catalog needs absolute backupRoot and workspaceRoot paths', {
        result: { backup_root: options.backupRoot, workspace_root: options.workspaceRoot },
      });
    }
    this.backupRoot = path.resolve(options.backupRoot);
    this.workspaceRoot = path.resolve(options.workspaceRoot);
    this.storage = options.storage ?? new LocalStorage(this.backupRoot, this.workspaceRoot);
    this.catalogPath = this.storage.localPath(CATALOG_FILE_NAME) ?? this.storage.locationOf(CATALOG_FILE_NAME);
    this.lockPath = `${this.catalogPath}.lock`;
    this.#lock = { storage: this.storage, key: `${CATALOG_FILE_NAME}.lock`, createParents: true };
    this.#lockTimeoutMs = options.lockTimeoutMs;
    this.#onWarning = options.onWarning ?? ((message) => console.warn(`⚠️  ${message}`));
  }

  /**
   * The current entries, oldest first. A missing or broken catalog is rebuilt from the manifests
   * (and saved, keeping the broken file); `warnings` says so.
   */
  async read(): Promise<CatalogReadResult> {
    if (this.storage.kind !== 'local') return this.#readRemote();
    const loaded = await this.#load();
    if (loaded.kind === 'valid') return { entries: loaded.entries, rebuilt: false, warnings: [] };
    if (loaded.kind === 'missing') {
      // Nothing to rebuild from: do not create the backup directory just to say so.
      const scan = await scanManifestsIn(this.storage);
      if (scan.entries.length === 0 && scan.problems.length === 0) return { entries: [], rebuilt: false, warnings: [] };
    }
    return this.#saveRebuildOrExplain();
  }

  /**
   * Runs `mutate` on fresh entries under the lock and saves what it leaves in the array (edit it
   * in place: push, splice, replace or change entries). Added and changed entries are validated
   * and their manifests rewritten; removed entries lose their manifests.
   */
  async update<T>(mutate: (entries: BackupEntry[]) => T | Promise<T>): Promise<T> {
    if (this.storage.kind !== 'local') return this.#updateRemote(mutate);
    return withLock(
      this.#lock,
      async () => {
        faultPoint('catalog:locked');
        const current = await this.#loadOrRebuild();
        for (const warning of current.warnings) this.#onWarning(warning);
        const before = this.#snapshot(current.entries);
        const entries = current.entries;
        const result = await mutate(entries);
        const changed = this.#validateChanges(entries, before);
        await this.#writeManifests(changed);
        await this.#write(entries);
        await this.#removeStaleManifests(entries, before);
        await this.#removeOrphanedTempFiles();
        return result;
      },
      { timeoutMs: this.#lockTimeoutMs },
    );
  }

  /** Records a new backup; its id must not be in the catalog yet. */
  async add(entry: BackupEntry): Promise<void> {
    await this.update((entries) => {
      if (entries.some((existing) => existing.backup_id === entry.backup_id)) {
        throw new FaberError('INTERNAL_ERROR', `The catalog already has a backup with id ${entry.backup_id}`, {
          result: { backup_id: entry.backup_id, catalog: this.catalogPath },
        });
      }
      entries.push(entry);
    });
  }

  /** Removes the entries with these ids (and their manifests); returns the entries removed. */
  async remove(ids: readonly string[]): Promise<BackupEntry[]> {
    const wanted = new Set(ids);
    return this.update((entries) => {
      const removed = entries.filter((entry) => wanted.has(entry.backup_id));
      const remaining = entries.filter((entry) => !wanted.has(entry.backup_id));
      entries.splice(0, entries.length, ...remaining);
      return removed;
    });
  }

  /** Changes one entry: `change` edits it in place or returns a replacement. Returns the saved entry. */
  async patch(id: string, change: (entry: BackupEntry) => BackupEntry | void): Promise<BackupEntry> {
    return this.update((entries) => {
      const index = entries.findIndex((entry) => entry.backup_id === id);
      const entry = entries[index];
      if (entry === undefined) throw this.#notFound(id);
      const patched = change(entry) ?? entry;
      entries[index] = patched;
      return patched;
    });
  }

  async find(id: string): Promise<BackupEntry | undefined> {
    const { entries } = await this.read();
    return entries.find((entry) => entry.backup_id === id);
  }

  /**
   * In an object store the manifests are the catalog: listing them is the truth every machine
   * shares, and no index object is written that concurrent writers could overwrite.
   */
  async #readRemote(): Promise<CatalogReadResult> {
    const scan = await scanManifestsIn(this.storage);
    return {
      entries: scan.entries,
      rebuilt: false,
      warnings: scan.problems.map((problem) => `Skipped a manifest: ${problem.message}`),
    };
  }

  /**
   * No lock across machines: each change touches only its own entries' manifests. A new entry's
   * manifest is created only if there is none (a create-only put: the commit of a backup), a
   * changed one replaced, a removed one deleted, so concurrent writers never lose each other's entries.
   */
  async #updateRemote<T>(mutate: (entries: BackupEntry[]) => T | Promise<T>): Promise<T> {
    const current = await this.#readRemote();
    for (const warning of current.warnings) this.#onWarning(warning);
    const before = this.#snapshot(current.entries);
    const entries = current.entries;
    const result = await mutate(entries);
    const changed = this.#validateChanges(entries, before);
    await mapWithConcurrency(changed, MANIFEST_WRITE_CONCURRENCY, async (entry) => {
      const key = manifestKeyFor(this.storage, entry) ?? '';
      if (before.has(entry.backup_id)) return this.storage.put(key, serializeManifest(entry));
      if (!(await this.storage.putIfAbsent(key, serializeManifest(entry)))) {
        throw new FaberError('INTERNAL_ERROR', `Another process recorded a backup with id ${entry.backup_id} first`, {
          result: { backup_id: entry.backup_id, manifest: this.storage.locationOf(key) },
        });
      }
    });
    await this.#removeStaleManifests(entries, before);
    return result;
  }

  async #load(): Promise<LoadedCatalog> {
    let data: Buffer | undefined;
    try {
      data = await this.storage.read(CATALOG_FILE_NAME);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { kind: 'invalid', reason: `it cannot be read (${code ?? (error as Error).message})` };
    }
    if (data === undefined) return { kind: 'missing' };
    return parseCatalog(data.toString('utf8'));
  }

  /** Under the lock: the catalog as it is, or rebuilt from the manifests and saved. */
  async #loadOrRebuild(): Promise<CatalogReadResult> {
    const loaded = await this.#load();
    if (loaded.kind === 'valid') return { entries: loaded.entries, rebuilt: false, warnings: [] };
    const scan = await scanManifestsIn(this.storage);
    const problems = scan.problems.map((problem) => `Skipped a manifest: ${problem.message}`);
    if (loaded.kind === 'missing' && scan.entries.length === 0)
      return { entries: [], rebuilt: false, warnings: problems };
    let headline = `The backup catalog ${this.catalogPath} was missing; rebuilt it from ${countOf(scan.entries.length, 'backup manifest')}.`;
    if (loaded.kind === 'invalid') {
      const keptAs = await this.#setAsideBrokenCatalog();
      headline =
        `The backup catalog ${this.catalogPath} was unusable (${loaded.reason}); ` +
        `rebuilt it from ${countOf(scan.entries.length, 'backup manifest')}. The broken file was kept as ${keptAs}.`;
    }
    await this.#write(scan.entries);
    return { entries: scan.entries, rebuilt: true, warnings: [headline, ...problems] };
  }

  /**
   * A read must work on a read-only backup directory too: then the rebuilt entries are returned
   * unsaved, with a warning, instead of failing the read.
   */
  async #saveRebuildOrExplain(): Promise<CatalogReadResult> {
    try {
      return await withLock(this.#lock, () => this.#loadOrRebuild(), { timeoutMs: this.#lockTimeoutMs });
    } catch (error) {
      if (isFaberError(error) || !isPermissionError(error)) throw error;
      const scan = await scanManifestsIn(this.storage);
      return {
        entries: scan.entries,
        rebuilt: true,
        warnings: [
          `The backup catalog ${this.catalogPath} is missing or unusable and could not be rewritten ` +
            `(${(error as Error).message}); showing the ${countOf(scan.entries.length, 'backup')} found in the manifests.`,
          ...scan.problems.map((problem) => `Skipped a manifest: ${problem.message}`),
        ],
      };
    }
  }

  async #setAsideBrokenCatalog(): Promise<string> {
    const stamp = new Date().toISOString().replace(/[-:.]/g, '');
    const keptAs = `${CATALOG_FILE_NAME}.corrupt-${stamp}`;
    await this.storage.move(CATALOG_FILE_NAME, keptAs);
    return `${this.catalogPath}.corrupt-${stamp}`;
  }

  async #write(entries: BackupEntry[]): Promise<void> {
    const sorted = sortEntries([...entries]);
    await this.storage.put(
      CATALOG_FILE_NAME,
      `${JSON.stringify({ schema_version: '1.0', backups: sorted }, null, 2)}\n`,
      { parents: 'require' },
    );
  }

  /**
   * Returns the added and changed entries, after checking that they are valid and that ids stay
   * unique. Each is replaced by its parsed form, so nothing outside the schema reaches the file.
   */
  #validateChanges(entries: BackupEntry[], before: Map<string, EntrySnapshot>): BackupEntry[] {
    const ids = new Set<string>();
    const changed: BackupEntry[] = [];
    entries.forEach((entry, index) => {
      if (ids.has(entry.backup_id)) {
        throw new FaberError(
          'INTERNAL_ERROR',
          `Refusing to save the catalog: backup id ${entry.backup_id} appears twice`,
        );
      }
      ids.add(entry.backup_id);
      if (before.get(entry.backup_id)?.json === JSON.stringify(entry)) return;
      const parsed = backupEntrySchema.safeParse(entry);
      if (!parsed.success) {
        throw new FaberError(
          'INTERNAL_ERROR',
          `Refusing to save an invalid catalog entry ${String(entry.backup_id)}: ${describeIssues(parsed.error)}`,
        );
      }
      this.#assertInsideBackupRoot(parsed.data);
      entries[index] = parsed.data;
      changed.push(parsed.data);
    });
    return changed;
  }

  #assertInsideBackupRoot(entry: BackupEntry): void {
    if (manifestKeyFor(this.storage, entry) === undefined) {
      throw new FaberError(
        'INTERNAL_ERROR',
        `Refusing to save ${entry.backup_id}: its file_path ${entry.file_path} is outside the backup directory ${this.backupRoot}`,
      );
    }
  }

  /** A backup whose directory is gone (deleted by hand) keeps its catalog entry but gets no manifest. */
  async #writeManifests(changed: BackupEntry[]): Promise<void> {
    await mapWithConcurrency(changed, MANIFEST_WRITE_CONCURRENCY, async (entry) => {
      const key = manifestKeyFor(this.storage, entry);
      if (key === undefined) return;
      try {
        await this.storage.put(key, serializeManifest(entry), { parents: 'require' });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    });
  }

  /** Manifests of removed entries, and the old manifest of an entry whose file moved. */
  async #removeStaleManifests(entries: BackupEntry[], before: Map<string, EntrySnapshot>): Promise<void> {
    const filePaths = new Map(entries.map((entry) => [entry.backup_id, entry.file_path]));
    const stale = [...before]
      .filter(([id, snapshot]) => filePaths.get(id) !== snapshot.file_path)
      .map(([id, snapshot]) => manifestKeyFor(this.storage, { backup_id: id, file_path: snapshot.file_path }))
      .filter((key) => key !== undefined);
    await mapWithConcurrency(stale, MANIFEST_WRITE_CONCURRENCY, (key) => this.storage.delete(key));
  }

  /**
   * Every catalog write happens under the lock, so a catalog temp file seen while holding it was
   * left by a writer that died between writing and renaming it.
   */
  async #removeOrphanedTempFiles(): Promise<void> {
    const prefix = `${CATALOG_FILE_NAME}.tmp-`;
    const orphans = (await this.storage.list('', { shallow: true })).filter((object) =>
      baseName(object.key).startsWith(prefix),
    );
    await Promise.all(orphans.map((object) => this.storage.delete(object.key)));
  }

  #snapshot(entries: BackupEntry[]): Map<string, EntrySnapshot> {
    return new Map(
      entries.map((entry) => [entry.backup_id, { json: JSON.stringify(entry), file_path: entry.file_path }]),
    );
  }

  #notFound(id: string): FaberError {
    return new FaberError('BACKUP_NOT_FOUND', `No backup with id ${id} in the catalog ${this.catalogPath}`, {
      result: { backup_id: id, catalog: this.catalogPath },
      suggestions: ['List the backups with the list-backups target, e.g. nx run <project>:list-backups:<environment>'],
    });
  }
}

/** Parses the catalog file's text; anything short of a valid catalog with unique ids is `invalid`. */
export function parseCatalog(text: string): LoadedCatalog {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { kind: 'invalid', reason: `it is not valid JSON: ${(error as Error).message}` };
  }
  const parsed = catalogSchema.safeParse(json);
  if (!parsed.success) return { kind: 'invalid', reason: describeIssues(parsed.error) };
  const ids = new Set<string>();
  for (const entry of parsed.data.backups) {
    if (ids.has(entry.backup_id)) return { kind: 'invalid', reason: `backup id ${entry.backup_id} appears twice` };
    ids.add(entry.backup_id);
  }
  return { kind: 'valid', entries: sortEntries(parsed.data.backups) };
}

function isPermissionError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

function countOf(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
