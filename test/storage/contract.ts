// The behaviour every Storage implementation promises; each implementation's test file runs it.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer } from 'node:stream/consumers';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Storage } from '../../src/storage/storage.ts';

export interface ContractOptions {
  /** A fresh, empty store for each test. */
  create: () => Promise<Storage>;
}

export function describeStorageContract(name: string, options: ContractOptions): void {
  describe(`Storage contract: ${name}`, () => {
    let storage: Storage;
    beforeEach(async () => {
      storage = await options.create();
    });

    it('puts, reads, streams and stats an object by key', async () => {
      await storage.put('app/dev/a.txt', 'hello');
      expect((await storage.read('app/dev/a.txt'))?.toString()).toBe('hello');
      expect((await buffer(await storage.get('app/dev/a.txt'))).toString()).toBe('hello');
      const info = await storage.stat('app/dev/a.txt');
      expect(info).toMatchObject({ key: 'app/dev/a.txt', size: 5 });
      expect(Math.abs(Date.now() - (info?.modifiedMs ?? 0))).toBeLessThan(10 * 60_000);
    });

    it('reports a missing object as absent, and a stream of one as ENOENT', async () => {
      expect(await storage.read('nope')).toBeUndefined();
      expect(await storage.stat('nope')).toBeUndefined();
      await expect(storage.get('nope')).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('replaces an object whole: concurrent writers leave exactly one of their values', async () => {
      const values = Array.from({ length: 6 }, (_, index) => String(index).repeat(100_000));
      await Promise.all(values.map((value) => storage.put('catalog.json', value)));
      expect(values).toContain((await storage.read('catalog.json'))?.toString());
    });

    it('create-only put: exactly one of several concurrent claims of a key wins', async () => {
      const claims = await Promise.all(
        Array.from({ length: 6 }, (_, index) => storage.putIfAbsent('.reservations/id-1', `claim ${index}`)),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      const winner = claims.indexOf(true);
      expect((await storage.read('.reservations/id-1'))?.toString()).toBe(`claim ${winner}`);
      expect(await storage.putIfAbsent('.reservations/id-1', 'late')).toBe(false);
    });

    it('replace-if-matches: succeeds with the current tag, refuses a stale one', async () => {
      await storage.put('index.json', 'v1');
      const first = (await storage.stat('index.json'))?.etag;
      expect(first).toBeTruthy();
      expect(await storage.putIfMatch('index.json', 'v2', first!)).toBe(true);
      expect((await storage.read('index.json'))?.toString()).toBe('v2');
      expect(await storage.putIfMatch('index.json', 'v3', first!)).toBe(false);
      expect((await storage.read('index.json'))?.toString()).toBe('v2');
      expect(await storage.putIfMatch('missing.json', 'v1', first!)).toBe(false);
    });

    it('lists by prefix, sorted, recursively or one level deep', async () => {
      for (const key of ['p/prod/b.sql', 'p/prod/a.sql', 'p/dev/c.sql', 'q/d.sql', 'top.json'])
        await storage.put(key, key);
      expect((await storage.list('p/')).map((object) => object.key)).toEqual([
        'p/dev/c.sql',
        'p/prod/a.sql',
        'p/prod/b.sql',
      ]);
      expect((await storage.list('p/prod/a')).map((object) => object.key)).toEqual(['p/prod/a.sql']);
      const shallow = await storage.list('p/', { shallow: true });
      expect(shallow.map((object) => [object.key, object.directory === true])).toEqual([
        ['p/dev', true],
        ['p/prod', true],
      ]);
      expect((await storage.list('', { shallow: true })).map((object) => object.key)).toEqual(['p', 'q', 'top.json']);
      expect(await storage.list('missing/')).toEqual([]);
    });

    it('streams into a key: the bytes are there after finish, and nothing after abort', async () => {
      const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      const writer = await storage.createWriter('p/prod/big.bin');
      await pipeline(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), writer.stream);
      await writer.finish();
      expect((await storage.stat('p/prod/big.bin'))?.size).toBe(data.length);
      expect((await buffer(await storage.get('p/prod/big.bin'))).equals(data)).toBe(true);

      const aborted = await storage.createWriter('p/prod/aborted.bin');
      aborted.stream.write(Buffer.alloc(1024));
      await aborted.abort();
      expect(await storage.stat('p/prod/aborted.bin')).toBeUndefined();
    });

    it('moves and deletes; deleting a missing key is fine', async () => {
      await storage.put('p/x.partial', 'x');
      await storage.move('p/x.partial', 'p/x');
      expect(await storage.stat('p/x.partial')).toBeUndefined();
      expect((await storage.read('p/x'))?.toString()).toBe('x');
      await storage.delete('p/x');
      await storage.delete('p/x');
      expect(await storage.stat('p/x')).toBeUndefined();
    });

    it('records a location for each key and maps it back', () => {
      const location = storage.locationOf('app/dev/backup-20260101-000000.sql.zst');
      expect(storage.keyOf(location)).toBe('app/dev/backup-20260101-000000.sql.zst');
    });
  });
}
