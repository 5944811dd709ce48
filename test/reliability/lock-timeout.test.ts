import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../../src/catalog/lock.ts';
import { createBackup } from '../../src/operations/backup.ts';
import { freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { expectSoundCatalog, filesUnder, holdCatalogLock, type LockHolder } from './support.ts';
import { anyInstance } from '../support/matchers.ts';

/**
 * A lock whose holder is alive is never taken over: a backup that cannot record itself within the
 * timeout (30 s, the operations' default) fails with LOCK_TIMEOUT, names the holder, and leaves
 * neither its file nor its manifest behind. Its own file because it waits the full timeout.
 */

let source: FreshDatabase | undefined;
let workspace: TestWorkspace | undefined;
let holder: LockHolder | undefined;

afterAll(async () => {
  holder?.stop();
  await source?.drop();
  if (workspace) await rm(workspace.root, { recursive: true, force: true });
});

describe('a live lock held past the timeout', () => {
  it(
    '→ LOCK_TIMEOUT naming the holder, the finished backup file removed, nothing recorded',
    async () => {
      source = await freshSqlite();
      await seedAwkwardData('sqlite', source.url);
      workspace = await makeWorkspace({ database: { provider: 'sqlite' } }, { DEV_DATABASE_URL: source.url });
      holder = holdCatalogLock(workspace.backupRoot, DEFAULT_LOCK_TIMEOUT_MS + 30_000);
      await holder.locked;
      const result = await createBackup({ environment: 'dev' }, workspace.ctx());
      expect(result).toMatchObject({
        status: 'error',
        error_code: 'LOCK_TIMEOUT',
        result: { holder_pid: anyInstance(Number) },
      });
      if (result.status !== 'error') return;
      expect(result.result.waited_ms).toBeGreaterThanOrEqual(DEFAULT_LOCK_TIMEOUT_MS);
      expect(result.error).toContain('backups.json.lock');
      expect(result.recovery.suggestions.join('\n')).toMatch(/Wait for the other faber-db task/);
      holder.stop();
      await holder.done;
      expect(
        (await filesUnder(workspace.backupRoot)).filter((name) => /\.(sqlite|zst|partial)$|manifest/.test(name)),
      ).toEqual([]);
      expect(await expectSoundCatalog(workspace.root, workspace.backupRoot)).toEqual([]);
    },
    DEFAULT_LOCK_TIMEOUT_MS + 60_000,
  );
});
