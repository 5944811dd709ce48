import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/storage/local.ts';
import { tempDirectory } from '../support/temp.ts';
import { describeStorageContract } from './contract.ts';

async function freshStorage(): Promise<LocalStorage> {
  const workspace = await tempDirectory('faber-storage-');
  return new LocalStorage(path.join(workspace, 'backups'), workspace);
}

describeStorageContract('local directory', { create: freshStorage });

describe('LocalStorage', () => {
  it('keeps the local layout: keys are paths, files 0600, directories 0700, no temp files left', async () => {
    const storage = await freshStorage();
    await storage.put('app/dev/backup.manifest.json', '{}');
    const file = path.join(storage.root, 'app', 'dev', 'backup.manifest.json');
    expect(storage.localPath('app/dev/backup.manifest.json')).toBe(file);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(storage.root, 'app'))).mode & 0o777).toBe(0o700);
    expect(await readdir(path.dirname(file))).toEqual(['backup.manifest.json']);
  });

  it('records file_path relative to the workspace root, absolute outside it; refuses keys outside the root', async () => {
    const storage = await freshStorage();
    expect(storage.locationOf('app/dev/x.sql')).toBe('backups/app/dev/x.sql');
    expect(new LocalStorage('/srv/backups', '/work/ws').locationOf('app/x.sql')).toBe('/srv/backups/app/x.sql');
    expect(storage.keyOf('../elsewhere/x.sql')).toBeUndefined();
    expect(storage.keyOf('backups')).toBeUndefined();
    expect(() => storage.localPath('../x')).toThrow(/Invalid storage key/);
  });

  it('a put that requires the parent directory fails with ENOENT when it is missing', async () => {
    const storage = await freshStorage();
    await expect(storage.put('gone/x.manifest.json', '{}', { parents: 'require' })).rejects.toMatchObject({
      code: 'ENOENT',
    });
  });
});
