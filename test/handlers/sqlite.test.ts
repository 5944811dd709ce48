import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandler } from '../../src/handlers/handler.ts';
import { freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData, sqlitePath } from '../support/fixtures.ts';
import { dumpTo, expectFaberError, makeHandler, PRISMA_DEFAULT } from './helpers.ts';

const created: FreshDatabase[] = [];
let source: FreshDatabase;
let handler: DatabaseHandler;
let work: string;
let temp: string;

function signal(): AbortSignal {
  return new AbortController().signal;
}

async function seededHandler(): Promise<{ db: FreshDatabase; handler: DatabaseHandler }> {
  const db = await freshSqlite();
  created.push(db);
  await seedAwkwardData('sqlite', db.url);
  return { db, handler: await makeHandler('sqlite', db.url, temp) };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'faber-sqlite-work-'));
  temp = path.join(work, 'tmp');
  ({ db: source, handler } = await seededHandler());
});

afterAll(async () => {
  await Promise.all(created.map((db) => db.drop()));
  await rm(work, { recursive: true, force: true });
});

describe('SqliteHandler', () => {
  it('preflight reports node:sqlite versions and the file size; a missing or foreign file → CONNECTION_FAILED', async () => {
    const info = await handler.preflight();
    expect(info.clientTool).toBe('node:sqlite');
    expect(info.clientVersion).toMatch(/^3\.\d+\.\d+$/);
    expect(info.serverVersion).toBe(`node:sqlite ${info.clientVersion}`);
    expect(info.databaseSizeBytes).toBeGreaterThan(10_000);

    const missing = path.join(work, 'missing.db');
    await expectFaberError((await makeHandler('sqlite', `sqlite:${missing}`, temp)).preflight(), 'CONNECTION_FAILED');
    expect(existsSync(missing)).toBe(false);
    const foreign = path.join(work, 'foreign.db');
    await writeFile(foreign, 'this is a text file, not a database, and it is long enough');
    await expectFaberError((await makeHandler('sqlite', `sqlite:${foreign}`, temp)).preflight(), 'CONNECTION_FAILED');
  });

  it('a backup is a SQLite file and leaves no temp file; a dropped scratch file is gone', async () => {
    const dump = await dumpTo(handler, 'sqlite', work);
    expect(await readdir(temp)).toEqual([]);
    expect((await readFile(dump.file!)).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
    const scratch = handler.scratchTarget('verify');
    await handler.createDatabase(scratch);
    await handler.restore(scratch, { format: 'sqlite', stream: createReadStream(dump.file!), signal: signal() });
    expect(existsSync(scratch.name)).toBe(true);
    await handler.dropDatabase(scratch);
    expect(existsSync(scratch.name)).toBe(false);
  });

  it('copies the committed state while another connection holds an open write transaction', async () => {
    const { db, handler: own } = await seededHandler();
    const app = new DatabaseSync(sqlitePath(db.url));
    app.exec('BEGIN IMMEDIATE; INSERT INTO blobs VALUES (99, x\'00\'); DELETE FROM "with space"');
    try {
      const dump = await dumpTo(own, 'sqlite', work);
      expect(dump.snapshot.tableRowCounts).toMatchObject({ blobs: 5, 'with space': 100 });
    } finally {
      app.exec('COMMIT');
      app.close();
    }
  });

  it('a file that is not a database, or a damaged one, → RESTORE_FAILED and no file is left', async () => {
    const target = handler.scratchTarget('restore');
    const garbage = Readable.from([Buffer.from('definitely not SQLite '.repeat(100))]);
    const notDatabase = await expectFaberError(
      handler.restore(target, { format: 'sqlite', stream: garbage, signal: signal() }),
      'RESTORE_FAILED',
    );
    expect(notDatabase.message).toContain('not a SQLite database');

    const dump = await dumpTo(handler, 'sqlite', work);
    const bytes = await readFile(dump.file!);
    const damaged = Buffer.from(bytes);
    // Scribble over the middle pages (the b-tree pages of the tables), keep the header intact.
    damaged.fill(0xa5, 4096 * 2, bytes.length - 4096);
    const broken = await expectFaberError(
      handler.restore(target, { format: 'sqlite', stream: Readable.from([damaged]), signal: signal() }),
      'RESTORE_FAILED',
    );
    expect(broken.message).toMatch(/integrity_check|malformed/);
    const siblings = await readdir(path.dirname(target.name));
    expect(siblings.filter((name) => name.startsWith(path.basename(target.name)))).toEqual([]);
  });

  it('a database that fails PRAGMA integrity_check (rows readable, an index wrong) → BACKUP_FAILED and the temp copy is gone', async () => {
    const db = await freshSqlite();
    created.push(db);
    // Not defensive: only then may a connection write sqlite_schema.
    const live = new DatabaseSync(sqlitePath(db.url), { defensive: false });
    live.exec(
      "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX t_b ON t (b); INSERT INTO t VALUES (1, 'x'), (2, 'y'), (3, 'z');",
    );
    // The index's definition now names another column than its entries hold: counting works, the check does not.
    live.exec(
      "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = 'CREATE INDEX t_b ON t (a)' WHERE name = 't_b'; PRAGMA writable_schema = OFF;",
    );
    live.close();
    const damaged = await makeHandler('sqlite', db.url, temp);
    const session = await damaged.startDump({ format: 'sqlite', migrations: PRISMA_DEFAULT, signal: signal() });
    expect((await session.snapshot).tableRowCounts).toEqual({ t: 3 });
    const drained = new Promise((resolve) => session.stream!.on('end', resolve).resume());
    const failure = await expectFaberError(session.finished, 'BACKUP_FAILED');
    expect(failure.message).toContain('integrity_check');
    await drained;
    await session.dispose();
    expect(await readdir(temp)).toEqual([]);
  });

  it('aborting a backup mid-stream → CANCELLED and the temp copy is gone', async () => {
    const controller = new AbortController();
    const session = await handler.startDump({
      format: 'sqlite',
      migrations: PRISMA_DEFAULT,
      signal: controller.signal,
    });
    await new Promise((resolve) => session.stream!.once('data', resolve));
    controller.abort();
    await expectFaberError(session.finished, 'CANCELLED');
    await session.dispose();
    expect(await readdir(temp)).toEqual([]);
  });

  it('names scratch files next to the live file and accepts only the sqlite format', async () => {
    const first = handler.scratchTarget('verify');
    expect(first.name).not.toBe(handler.scratchTarget('verify').name);
    expect(first.name.startsWith(`${source.name}__faber_verify_`)).toBe(true);
    expect(handler.extension('sqlite')).toBe('sqlite');
    expect(handler.backupMethod('sqlite')).toBe('node:sqlite backup');
    expect(() => handler.extension('sql')).toThrow(/sqlite/);
    expect(await handler.isEmpty(handler.target(path.join(work, 'nothing.db')))).toBe(true);
    expect(await handler.isEmpty(handler.live)).toBe(false);
  });
});
