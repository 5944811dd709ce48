import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { sqlitePath } from '../support/fixtures.ts';
import { makeHandler, PRISMA_DEFAULT } from './helpers.ts';

const created: FreshDatabase[] = [];
const writers: ChildProcess[] = [];
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'faber-sqlite-copy-'));
});

afterAll(async () => {
  for (const writer of writers) writer.kill('SIGKILL');
  await Promise.all(created.map((db) => db.drop()));
  await rm(work, { recursive: true, force: true });
});

/** Two tables that the writer only ever changes together, and ~40 MB of rows it rewrites all over the file. */
async function pairedDatabase(journalMode: 'delete' | 'wal'): Promise<FreshDatabase> {
  const db = await freshSqlite();
  created.push(db);
  const live = new DatabaseSync(sqlitePath(db.url));
  live.exec(`PRAGMA journal_mode = ${journalMode}`);
  live.exec('CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER); CREATE TABLE b (id INTEGER PRIMARY KEY, n INTEGER);');
  live.exec('CREATE TABLE padding (id INTEGER PRIMARY KEY, filler BLOB)');
  live.exec(
    'WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 10000) INSERT INTO padding SELECT i, randomblob(4000) FROM s',
  );
  live.close();
  return db;
}

/**
 * Another process committing, per transaction, a row to `a`, 200 rows of padding across the file and
 * a row to `b`. Its page cache is 10 pages, so each transaction spills changed pages into the
 * database file long before it commits (in rollback-journal mode, under the EXCLUSIVE lock), and it
 * waits 20 ms with them there: a copy of the file taken without the lock would see `a`'s new row
 * without `b`'s, or pages of two states.
 */
function startWriter(file: string): ChildProcess {
  const script = `
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(${JSON.stringify(file)}, { timeout: 30000 });
    db.exec('PRAGMA cache_size = 10');
    const a = db.prepare('INSERT INTO a (n) VALUES (?)');
    const b = db.prepare('INSERT INTO b (n) VALUES (?)');
    const spread = db.prepare('UPDATE padding SET filler = randomblob(4000) WHERE id % 50 = ?');
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; ; i++) {
      db.exec('BEGIN IMMEDIATE');
      a.run(i);
      spread.run(i % 50);
      Atomics.wait(pause, 0, 0, 20);
      b.run(i);
      db.exec('COMMIT');
      Atomics.wait(pause, 0, 0, 5);
    }`;
  const writer = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  writers.push(writer);
  return writer;
}

function pairs(file: string): number {
  const db = new DatabaseSync(file, { timeout: 30000 });
  try {
    return Number((db.prepare('SELECT count(*) AS n FROM a').get() as { n: number }).n);
  } finally {
    db.close();
  }
}

async function backupOnce(url: string, env: NodeJS.ProcessEnv = process.env) {
  const handler = await makeHandler('sqlite', url, path.join(work, 'tmp'), env);
  const session = await handler.startDump({
    format: 'sqlite',
    migrations: PRISMA_DEFAULT,
    signal: new AbortController().signal,
  });
  const file = path.join(work, `copy-${created.length}-${Date.now()}-${Math.random().toString(16).slice(2)}.sqlite`);
  await Promise.all([pipeline(session.stream!, createWriteStream(file)), session.finished]);
  const copy = new DatabaseSync(file, { readOnly: true });
  try {
    const count = (table: string) =>
      Number((copy.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    const integrity = copy.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
    return {
      checks: session.checks ?? [],
      snapshot: (await session.snapshot).tableRowCounts,
      a: count('a'),
      b: count('b'),
      integrity: integrity.integrity_check,
    };
  } finally {
    copy.close();
  }
}

describe('the SQLite backup copy, while another process writes', () => {
  it.each([
    ['delete', 'file copy under a shared lock'],
    ['wal', 'online backup'],
  ] as const)(
    'journal_mode=%s (%s): every copy holds both rows of each committed pair or neither',
    async (journalMode, method) => {
      const db = await pairedDatabase(journalMode);
      const file = sqlitePath(db.url);
      startWriter(file);
      while (pairs(file) < 5) await delay(20);
      const copies = [];
      for (let round = 0; round < 8; round++) {
        copies.push(await backupOnce(db.url));
        await delay(20);
      }
      for (const copy of copies) {
        expect(copy.checks).toContain(`consistent copy: ${method}`);
        expect(copy.integrity).toBe('ok');
        expect(copy.a).toBe(copy.b);
        expect(copy.snapshot).toMatchObject({ a: copy.a, b: copy.b, padding: 10000 });
      }
      // The writer went on committing between the copies: they were taken from a database in use.
      expect(copies.at(-1)!.a).toBeGreaterThan(copies[0]!.a);
    },
    60_000,
  );

  it('uses the online backup when cp cannot run', async () => {
    const db = await pairedDatabase('delete');
    const copy = await backupOnce(db.url, { ...process.env, PATH: path.join(work, 'no-such-directory') });
    expect(copy.checks).toContain('consistent copy: online backup');
    expect(copy.integrity).toBe('ok');
    expect(copy.snapshot).toMatchObject({ a: 0, b: 0, padding: 10000 });
  });
});
