import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/operations/backup.ts';
import { adminUrl, createPasswordUser, type PasswordUser } from '../support/databases.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { seedBulk, sessionsOn } from './seed.ts';
import { expectSoundCatalog, filesUnder, runOperationChild } from './support.ts';

/**
 * kill -9 of a PostgreSQL backup at named points (src/util/fault.ts) spread from the id
 * reservation to after the catalog write. After each: the catalog on disk parses, every entry it
 * lists is complete (file present, checksum right, manifest equal), the crash left exactly the
 * leftovers expected at that point and nothing else, the database has no session of the dead
 * backup, and the next backup runs (taking over a lock the dead one held).
 */

const CRASH_TIME = '2030-01-01T00:00:00.000Z';
const CRASH_ID = 'backup-20300101-000000-crash';
const FILE = `${CRASH_ID}.sql.zst`;
const DIR = 'api/dev';

interface CrashCase {
  point: string;
  /** What the dead backup leaves in the backup directory, beyond the baseline (regexps over relative paths). */
  leaves: RegExp[];
  /** The crashed backup is complete and in the catalog. */
  recorded?: boolean;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const partial = new RegExp(`^${escape(`${DIR}/${FILE}.partial`)}$`);
const finalFile = new RegExp(`^${escape(`${DIR}/${FILE}`)}$`);
const manifest = new RegExp(`^${escape(`${DIR}/${CRASH_ID}.manifest.json`)}$`);
const lock = /^backups\.json\.lock$/;
const passfile = /^\.tmp\/faber-pgpass-\d+-[0-9a-f]+$/;

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
  { point: `atomic-write:${CRASH_ID}.manifest.json`, leaves: [finalFile, lock, new RegExp(`^${escape(`${DIR}/${CRASH_ID}.manifest.json.tmp-`)}\\d+-[0-9a-f]+$`)] },
  { point: 'atomic-write:backups.json', leaves: [finalFile, manifest, lock, /^backups\.json\.tmp-\d+-[0-9a-f]+$/] },
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
  await Promise.all([baseline?.root, ...workspaces].map((root) => root && rm(root, { recursive: true, force: true })));
});

async function copyOfBaseline(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'faber-crash-'));
  await cp(baseline.root, root, { recursive: true });
  workspaces.push(root);
  return root;
}

function backupChild(root: string, fault?: string, now?: string) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: owner.url, ...(fault ? { FABER_DB_FAULT: fault } : {}) };
  return runOperationChild({ operation: 'backup', workspaceRoot: root, projectName: 'api', options: { environment: 'dev', label: 'crash' }, ...(now ? { now } : {}) }, env);
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
  it.each(CASES)('$point: catalog sound, expected leftovers only, next backup works', async ({ point, leaves, recorded }) => {
    const root = await copyOfBaseline();
    const backupRoot = path.join(root, path.relative(baseline.root, baseline.backupRoot));
    const crashed = await backupChild(root, point, CRASH_TIME).done;
    expect(crashed.signal, `the process reached ${point}:\n${crashed.stdout}\n${crashed.stderr}`).toBe('SIGKILL');

    const entries = await expectSoundCatalog(root, backupRoot);
    expect(entries.map((entry) => entry.backup_id).some((id) => id === CRASH_ID)).toBe(recorded === true);
    expect(entries).toHaveLength(recorded ? 2 : 1);
    const added = (await filesUnder(backupRoot)).filter((name) => !baselineFiles.includes(name) && name !== '.tmp');
    expect(added.filter((name) => !leaves.some((pattern) => pattern.test(name))), 'unexpected leftovers').toEqual([]);
    for (const pattern of leaves) expect(added.some((name) => pattern.test(name)), `leftover ${pattern}`).toBe(true);
    expect(await waitForNoSessions(owner.name), 'sessions of the dead backup').toBe(0);

    const next = await backupChild(root).done;
    expect(next.result, next.stderr).toMatchObject({ status: 'success' });
    expect(await expectSoundCatalog(root, backupRoot)).toHaveLength(recorded ? 3 : 2);
  });
});
