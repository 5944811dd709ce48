import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ensurePrivateDir, writeFileAtomic } from '../catalog/atomic-file.ts';
import { FreeingWriteStream } from '../util/spent-buffers.ts';
import { mapWithConcurrency } from '../catalog/concurrency.ts';
import { FaberError } from '../output/errors.ts';
import { notFound, type PutOptions, type Storage, type StoredObject, type StorageWriter } from './storage.ts';

const STAT_CONCURRENCY = 32;

/**
 * A backup directory on a local (or mounted) filesystem: keys are paths below `root`. Files are
 * created 0600 and directories 0700; replacements are atomic (temp file, fsync, rename, fsync of
 * the directory), creations exclusive (O_EXCL).
 */
export class LocalStorage implements Storage {
  readonly kind = 'local';
  readonly root: string;
  readonly workspaceRoot: string;
  readonly description: string;

  constructor(root: string, workspaceRoot: string) {
    this.root = path.resolve(root);
    this.workspaceRoot = path.resolve(workspaceRoot);
    this.description = this.root;
  }

  localPath(key: string): string {
    return this.#path(key);
  }

  /** Relative to the workspace root with forward slashes, or absolute when outside it. */
  locationOf(key: string): string {
    const absolute = this.#path(key);
    const relative = path.relative(this.workspaceRoot, absolute);
    return relative.startsWith('..') || path.isAbsolute(relative) ? absolute : relative.split(path.sep).join('/');
  }

  keyOf(location: string): string | undefined {
    const relative = path.relative(this.root, path.resolve(this.workspaceRoot, location));
    if (relative === '' || relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative))
      return undefined;
    return relative.split(path.sep).join('/');
  }

  async prepare(prefix: string): Promise<void> {
    const directory = this.#path(prefix.replace(/\/$/, ''));
    try {
      await fs.mkdir(directory, { recursive: true, mode: 0o700 });
      await fs.access(directory, constants.W_OK);
    } catch (error) {
      const mode = await fs
        .stat(directory)
        .then((info) => (info.mode & 0o777).toString(8))
        .catch(() => 'missing');
      throw new FaberError(
        'DIRECTORY_NOT_WRITABLE',
        `Cannot write to the backup directory ${directory}: ${(error as Error).message}`,
        {
          cause: error,
          result: { backup_directory: directory, permissions: mode },
          suggestions: [
            `Fix the permissions: chmod 700 ${directory} (owned by the user who runs the backup)`,
            'Or point backup.directory in config.json at a writable place',
          ],
        },
      );
    }
  }

  /** Creates the directory `key` exclusively (a directory-format dump's .partial); false when it exists. */
  async createDirectory(key: string): Promise<boolean> {
    try {
      await fs.mkdir(this.#path(key), { mode: 0o700 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.#path(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async get(key: string): Promise<Readable> {
    const file = this.#path(key);
    const handle = await fs.open(file, 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? notFound(key, this.description) : error;
    });
    return handle.createReadStream();
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      return toObject(key, await fs.stat(this.#path(key)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async list(prefix: string, options: { shallow?: boolean } = {}): Promise<StoredObject[]> {
    if (options.shallow) return this.#children(prefix);
    const directory = prefix.endsWith('/') || prefix === '' ? prefix : prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const found: StoredObject[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      for (const child of await this.#children(dirKey)) {
        if (child.directory) await walk(`${child.key}/`);
        else if (child.key.startsWith(prefix)) found.push(child);
      }
    };
    await walk(directory);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async put(key: string, data: string | Uint8Array, options: PutOptions = {}): Promise<void> {
    const file = this.#path(key);
    if (options.parents !== 'require') await ensurePrivateDir(path.dirname(file));
    await writeFileAtomic(file, data, options.mode);
  }

  async putIfAbsent(key: string, data: string | Uint8Array, options: PutOptions = {}): Promise<boolean> {
    const file = this.#path(key);
    if (options.parents !== 'require') await ensurePrivateDir(path.dirname(file));
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'wx', options.mode ?? 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
    try {
      if (data.length > 0) await handle.writeFile(data);
      await handle.close();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await fs.rm(file, { force: true });
      throw error;
    }
    return true;
  }

  /**
   * Not atomic against another process on a filesystem: local callers that need that (the catalog)
   * hold the catalog lock around it.
   */
  async putIfMatch(key: string, data: string | Uint8Array, etag: string): Promise<boolean> {
    const current = await this.stat(key);
    if (current?.etag !== etag) return false;
    await writeFileAtomic(this.#path(key), data);
    return true;
  }

  async createWriter(key: string, options: { mode?: number } = {}): Promise<StorageWriter> {
    const file = this.#path(key);
    await ensurePrivateDir(path.dirname(file));
    const stream = new FreeingWriteStream(file, {
      flags: 'w',
      mode: options.mode ?? 0o600,
      highWaterMark: 1024 * 1024,
    });
    return {
      stream,
      finish: () => fsyncFile(file),
      abort: async () => {
        // Once the stream has closed: an open still in flight would create the file again after the rm.
        if (!stream.closed) await new Promise<void>((resolve) => stream.destroy().once('close', () => resolve()));
        await fs.rm(file, { recursive: true, force: true });
      },
    };
  }

  async move(from: string, to: string): Promise<void> {
    await fs.rename(this.#path(from), this.#path(to));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.#path(key), { recursive: true, force: true });
  }

  /** Direct children of a directory key, with sizes and times; a missing directory has none. */
  async #children(dirKey: string): Promise<StoredObject[]> {
    const base = dirKey.replace(/\/$/, '');
    let children;
    try {
      children = await fs.readdir(this.#path(base), { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR')
        return [];
      throw error;
    }
    const kept = children
      .filter((child) => child.isFile() || child.isDirectory())
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const objects = await mapWithConcurrency(kept, STAT_CONCURRENCY, async (child) => {
      const key = base === '' ? child.name : `${base}/${child.name}`;
      return this.stat(key);
    });
    return objects.filter((object) => object !== undefined);
  }

  #path(key: string): string {
    if (key.split('/').includes('..') || path.isAbsolute(key)) throw new Error(`Invalid storage key ${key}`);
    return key === '' ? this.root : path.join(this.root, ...key.split('/'));
  }
}

function toObject(key: string, info: Awaited<ReturnType<typeof fs.stat>>): StoredObject {
  const object: StoredObject = {
    key,
    size: Number(info.size),
    modifiedMs: Number(info.mtimeMs),
    etag: `${info.ino}-${info.size}-${info.mtimeMs}`,
  };
  if (info.isDirectory()) object.directory = true;
  return object;
}

export async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
