import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { StorageWriter } from './storage.ts';

/**
 * Writes the same bytes to two writers in one pass (the slower one sets the pace), and finishes or
 * aborts both: an upload and a local copy of it.
 */
export function teeWriter(primary: StorageWriter, copy: StorageWriter): StorageWriter {
  const targets = [primary.stream, copy.stream];
  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      Promise.all(targets.map((target) => writeTo(target, chunk))).then(() => callback(), callback);
    },
    final(callback) {
      for (const target of targets) target.end();
      Promise.all(targets.map((target) => finished(target))).then(() => callback(), callback);
    },
    destroy(error, callback) {
      for (const target of targets) if (!target.destroyed) target.destroy(error ?? undefined);
      callback(error);
    },
  });
  return {
    stream,
    finish: async () => {
      await Promise.all([primary.finish(), copy.finish()]);
    },
    abort: async () => {
      await Promise.all([primary.abort(), copy.abort()]);
    },
  };
}

function writeTo(target: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    target.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}
