import { cp, mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/operations/backup.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import type { OperationContext } from '../../src/operations/context.ts';
import { silentReporter } from '../../src/output/reporter.ts';
import { adminUrl, createPasswordUser, type PasswordUser } from '../support/databases.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { seedBulk, sessionsOn } from './seed.ts';
import { expectSoundCatalog, filesUnder, runOperationChild } from './support.ts';

/**
 * kill -9 of a PostgreSQL backup at named points (src/util/fault.ts) spread from the id
 * reservation to after the catalog write. After each: the catalog on disk parses, every entry it
 * lists is complete (file present, checksum right, manifest equal), the crash left exactly the
 * leftovers expected at that point and nothing else, and the database has no session of the dead
 * backup. Then the next runs: cleanup-backups --dryRun reports every leftover in the backup's
 * directory; once the leftovers are an hour old, cleanup-backups --yes removes them all (and
 * re-adds a complete backup that has its manifest); the next backup runs (taking over a lock the
 * dead one held).
 */

const CRASH_TIME = '2030-01-01T00:00:00.000Z';
const CRASH_ID = 'backup-20300101-000000-crash';
const FILE = `${CRASH_ID}.sql.zst`;
const DIR = 'api/dev';
const HOUR_MS = 3_600_000;

interface CrashCase {
  point: string;
  /** What the dead backup leaves in the backup directory, beyond the baseline (regexps over relative paths). */
  leaves: RegExp[];
  /** The crashed backup is complete and in the catalog. */
  recorded?: boolean;
  /** The crashed backup is complete with its manifest but not cataloged: cleanup --yes re-adds it. */
  recoverable?: boolean;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const partial = new RegExp(`^${escape(`${DIR}/${FILE}.partial`)}$`);
const finalFile = new RegExp(`^${escape(`${DIR}/${FILE}`)}$`);
const manifest = new RegExp(`^${escape(`${DIR}/${CRASH_ID}.manifest.json`)}$`);
const lock = /^backups\.json\.lock$/;
const passfile = /^\.tmp\/faber-pgpass-\d+-[0-9a-f]+$/;
/** Id claims are kept for a day on purpose (src/catalog/reservations.ts): not leftovers. */
const idClaim = /^\.reservations(\/|$)/;

const CASES: CrashCase[] = [
  { point: 'backup:reserved', leaves: [partial] },
  { point: 'backup:dump-started', leaves: [partial, passfile] },
  { point: 'backup:streaming@65536', leaves: [partial, passfile] },
  { point: 'backup:streaming@1048576', leaves: [partial, passfile] },
  { point: 'backup:streaming@16777216', leaves: [partial, passfile] },
  { point: 'backup:dumped', leaves: [partial] },
  { point: 'backup:verified', leaves: [partial] },
  { point: 'backup:renamed', leaves: [finalFile] },
  // The catalog writes the manifest, then the catalog, both under its lock.
  { point: 'catalog:locked', leaves: [finalFile, lock] },
  {
    point: `atomic-write:${CRASH_ID}.manifest.json`,
    leaves: [finalFile, lock, new RegExp(`^${escape(`${DIR}/${CRASH_ID}.manifest.json.tmp-`)}\\d+-[0-9a-f]+$`)],
  },
  {
    point: 'atomic-write:backups.json',
    leaves: [finalFile, manifest, lock, /^backups\.json\.tmp-\d+-[0-9a-f]+$/],
    recoverable: true,
  },
  { point: 'backup:cataloged', leaves: [finalFile, manifest], recorded: true },
];

let owner: PasswordUser;
let baseline: TestWorkspace;
let baselineFiles: string[];
const workspaces: string[] = [];

beforeAll(async () => {
  owner = await createPasswordUser('postgresql');
  await seedBulk(owner.url, 35);
  baseline = await makeWorkspace({ database: { provider: 'postgresql' } }, { DEV_DATABASE_URL: owner.url });
  const first = await createBackup({ environment: 'dev', label: 'baseline' }, baseline.ctx());
  expect(first.status).toBe('success');
  baselineFiles = await filesUnder(baseline.backupRoot);
});

afterAll(async () => {
  await owner?.drop();
  // The workspaces hold copies of the dumps: keep the temp directory small.
  await Promise.all(
    [baseline?.root, ...workspaces]
      .filter((root) => root !== undefined)
      .map((root) => rm(root, { recursive: true, force: true })),
  );
});

async function copyOfBaseline(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'faber-crash-'));
  await cp(baseline.root, root, { recursive: true });
  workspaces.push(root);
  return root;
}

function backupChild(root: string, fault?: string, now?: string) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DEV_DATABASE_URL: owner.url,
    ...(fault ? { FABER_DB_FAULT: fault } : {}),
  };
  return runOperationChild(
    {
      operation: 'backup',
      workspaceRoot: root,
      projectName: 'api',
      options: { environment: 'dev', label: 'crash' },
      ...(now ? { now } : {}),
    },
    env,
  );
}

function ctxFor(root: string): OperationContext {
  return {
    workspaceRoot: root,
    projectName: 'api',
    env: { PATH: process.env.PATH, DEV_DATABASE_URL: owner.url },
    reporter: silentReporter(),
    interactive: false,
  };
}

/** The paths (relative to the backup root) that cleanup-backups --dryRun reports as orphans. */
async function dryRunOrphans(root: string): Promise<string[]> {
  const result = await cleanupBackups({ environment: 'dev', dryRun: true }, ctxFor(root));
  if (result.status !== 'success') throw new Error(`cleanup --dryRun failed: ${result.error}`);
  const backupRoot = path.join(root, path.relative(baseline.root, baseline.backupRoot));
  return result.result.orphans.map((orphan) =>
    path.relative(backupRoot, path.resolve(root, orphan.path)).split(path.sep).join('/'),
  );
}

/** Sets back the modification time of everything under `dir`, as if the crash were that long ago. */
async function ageEverything(dir: string, ms: number): Promise<void> {
  const past = new Date(Date.now() - ms);
  for (const name of await filesUnder(dir)) await utimes(path.join(dir, name), past, past);
}

async function waitForNoSessions(database: string): Promise<number> {
  let sessions = await sessionsOn(adminUrl('postgresql'), database);
  for (let waited = 0; sessions > 0 && waited < 10_000; waited += 100) {
    await sleep(100);
    sessions = await sessionsOn(adminUrl('postgresql'), database);
  }
  return sessions;
}

describe(`kill -9 of a PostgreSQL backup at ${CASES.length} points`, () => {
  it.each(CASES)(
    '$point: catalog sound, expected leftovers only, reported and cleaned by the next run',
    async ({ point, leaves, recorded, recoverable }) => {
      const root = await copyOfBaseline();
      const backupRoot = path.join(root, path.relative(baseline.root, baseline.backupRoot));
      const crashed = await backupChild(root, point, CRASH_TIME).done;
      expect(crashed.signal, `the process reached ${point}:\n${crashed.stdout}\n${crashed.stderr}`).toBe('SIGKILL');

      const entries = await expectSoundCatalog(root, backupRoot);
      expect(entries.map((entry) => entry.backup_id).some((id) => id === CRASH_ID)).toBe(recorded === true);
      expect(entries).toHaveLength(recorded ? 2 : 1);
      const added = (await filesUnder(backupRoot)).filter(
        (name) => !baselineFiles.includes(name) && name !== '.tmp' && !idClaim.test(name),
      );
      expect(
        added.filter((name) => !leaves.some((pattern) => pattern.test(name))),
        'unexpected leftovers',
      ).toEqual([]);
      for (const pattern of leaves)
        expect(
          added.some((name) => pattern.test(name)),
          `leftover ${pattern}`,
        ).toBe(true);
      expect(await waitForNoSessions(owner.name), 'sessions of the dead backup').toBe(0);

      if (!recorded) {
        // A manifest is reported with the backup file it describes.
        const reported = (await dryRunOrphans(root)).flatMap((name) => [
          name,
          name.replace(/\.sql\.zst$/, '.manifest.json'),
        ]);
        for (const name of added.filter((file) => file.startsWith(`${DIR}/`)))
          expect(reported, `reported: ${name}`).toContain(name);
      }

      await ageEverything(backupRoot, HOUR_MS);
      const repaired = await cleanupBackups({ environment: 'dev', yes: true }, ctxFor(root));
      expect(repaired.status, JSON.stringify(repaired)).toBe('success');
      const survivors = recorded || recoverable ? [`${DIR}/${CRASH_ID}.manifest.json`, `${DIR}/${FILE}`] : [];
      // The password file a crash leaves in .tmp has its own test below.
      const remaining = (await filesUnder(backupRoot)).filter(
        (name) => !baselineFiles.includes(name) && !passfile.test(name) && !idClaim.test(name),
      );
      expect(remaining, 'left after cleanup --yes').toEqual(survivors);
      expect(await expectSoundCatalog(root, backupRoot)).toHaveLength(recorded || recoverable ? 2 : 1);

      const next = await createBackup({ environment: 'dev', label: 'next' }, ctxFor(root));
      expect(next.status, JSON.stringify(next)).toBe('success');
      expect(await expectSoundCatalog(root, backupRoot)).toHaveLength(recorded || recoverable ? 3 : 2);
    },
  );

  it('the password file of a backup killed mid-dump does not outlive the next runs', async () => {
    const root = await copyOfBaseline();
    const backupRoot = path.join(root, path.relative(baseline.root, baseline.backupRoot));
    expect((await backupChild(root, 'backup:streaming@1048576', CRASH_TIME).done).signal).toBe('SIGKILL');
    const left = (await filesUnder(backupRoot)).filter((name) => passfile.test(name));
    expect(left).toHaveLength(1);
    expect((await stat(path.join(backupRoot, left[0]!))).mode & 0o777).toBe(0o600);

    await ageEverything(backupRoot, HOUR_MS);
    expect((await cleanupBackups({ environment: 'dev', yes: true }, ctxFor(root))).status).toBe('success');
    expect((await createBackup({ environment: 'dev', label: 'next' }, ctxFor(root))).status).toBe('success');
    expect(
      (await filesUnder(backupRoot)).filter((name) => passfile.test(name)),
      'password files left',
    ).toEqual([]);
  });
});
