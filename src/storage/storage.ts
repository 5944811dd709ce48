import type { Readable, Writable } from 'node:stream';

/** One stored object (or, for a shallow listing of a local directory, one sub-directory). */
export interface StoredObject {
  /** Key relative to the store's root, `/`-separated. */
  key: string;
  size: number;
  modifiedMs: number;
  /** A directory of a local store (directory-format dumps, `<project>/<environment>`). */
  directory?: boolean;
  /** Version tag for replace-if-matches (`putIfMatch`). */
  etag?: string;
}

export interface PutOptions {
  /**
   * `require`: fail with an ENOENT-coded error when the key's parent directory does not exist
   * (a manifest is only written beside its backup). Stores without directories ignore it.
   */
  parents?: 'create' | 'require';
  mode?: number;
}

/** A stream being written to a key; nothing is visible under the key until `finish()` resolves. */
export interface StorageWriter {
  readonly stream: Writable;
  /** Makes the bytes durable and visible (fsync; complete the upload). Call after the stream ended. */
  finish(): Promise<void>;
  /** Gives up: nothing is left under the key (and no half-done upload). */
  abort(): Promise<void>;
}

/**
 * Where backups, their manifests and the catalog live, addressed by key (never by path): a local
 * directory or an object store. Every implementation passes test/storage/contract.
 */
export interface Storage {
  readonly kind: 'local' | 's3';
  /** For messages: the directory, or `s3://bucket/prefix`. */
  readonly description: string;
  /** What the catalog records as an object's `file_path`. */
  locationOf(key: string): string;
  /** The key a recorded `file_path` points at, or undefined when it is not inside this store. */
  keyOf(location: string): string | undefined;
  /** A filesystem path for tools that need one (local only). */
  localPath(key: string): string | undefined;

  /** Checks that backups can be written under the directory key `prefix` (creating it where directories exist). */
  prepare(prefix: string): Promise<void>;

  /** The whole object, or undefined when there is none. */
  read(key: string): Promise<Buffer | undefined>;
  /** A stream of the object; an ENOENT-coded error when it does not exist. */
  get(key: string): Promise<Readable>;
  stat(key: string): Promise<StoredObject | undefined>;
  /**
   * Objects whose key starts with `prefix`, sorted by key. `shallow` lists only the direct
   * children of the "directory" `prefix` (which ends with `/` or is empty), sub-directories
   * marked `directory`.
   */
  list(prefix: string, options?: { shallow?: boolean }): Promise<StoredObject[]>;

  /** Atomically replaces the object: readers see the old or the new bytes, never a mix. */
  put(key: string, data: string | Uint8Array, options?: PutOptions): Promise<void>;
  /** Creates the object only if there is none; false when it already exists. */
  putIfAbsent(key: string, data: string | Uint8Array, options?: PutOptions): Promise<boolean>;
  /** Replaces the object only if it still has `etag`; false when it changed or is gone. */
  putIfMatch(key: string, data: string | Uint8Array, etag: string): Promise<boolean>;
  /** Streams into `key` (see StorageWriter); the object appears only when finished. */
  createWriter(key: string, options?: { mode?: number }): Promise<StorageWriter>;
  /** Moves an object (or a local directory) to another key, replacing what is there. */
  move(from: string, to: string): Promise<void>;
  /** Deletes the object (a local directory with everything in it); missing is fine. */
  delete(key: string): Promise<void>;

  /** Object stores: uploads under `prefix` that were started and never completed or aborted (a killed backup). */
  pendingUploads?(prefix: string): Promise<PendingUpload[]>;
  abortUpload?(upload: PendingUpload): Promise<void>;
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiatedMs: number;
}

export function notFound(key: string, where: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`ENOENT: no such object ${key} in ${where}`);
  error.code = 'ENOENT';
  return error;
}

export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** `a/b/c.json` → `a/b/`; a top-level key → ''. */
export function parentKey(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash === -1 ? '' : key.slice(0, slash + 1);
}

export function baseName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}
