import type { FileHandle } from 'node:fs/promises';
import { BlockReader, sharedBlockPool } from './channel.ts';
import type { BlockPool } from './compression.ts';

/**
 * A file read straight into pooled blocks (which the decode check hands back once compared), as
 * the dump tools' output is: fs.createReadStream allocates a fresh buffer per read, and those
 * pile up until V8 collects, then archive.ts copies each into a block anyway. Closes the handle
 * at the end, on error and when destroyed.
 */
export class FileBlockReader extends BlockReader {
  readonly #handle: FileHandle;
  #reading = false;

  constructor(handle: FileHandle, pool: BlockPool = sharedBlockPool) {
    super(pool);
    this.#handle = handle;
  }

  override _read(): void {
    if (this.#reading) return;
    this.#reading = true;
    const block = this.pool.take();
    this.#handle.read(block, 0, block.length, null).then(
      ({ bytesRead }) => {
        this.#reading = false;
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.pool.give(block);
          this.push(null);
        } else this.push(bytesRead === block.length ? block : block.subarray(0, bytesRead));
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(error as Error);
      },
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#handle.close().then(
      () => callback(error),
      (closeError: unknown) => callback(error ?? (closeError as Error)),
    );
  }
}
