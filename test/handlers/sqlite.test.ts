import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandler } from '../../src/handlers/handler.ts';
import { freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { SEEDED_MIGRATIONS, seedAwkwardData, sqlitePath, tableChecksums } from '../support/fixtures.ts';
import { dumpTo, expectFaberError, makeHandler, PRISMA_DEFAULT } from './helpers.ts';

const EXPECTED_COUNTS = { 'Mixed Case': 300, _prisma_migrations: 3, blobs: 5, 'with space': 100 };

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

  it('a backup restores into a scratch file with identical content; snapshot and migrations match; no temp file remains', async () => {
    const dump = await dumpTo(handler, 'sqlite', work);
    expect(dump.snapshot.tableRowCounts).toEqual(EXPECTED_COUNTS);
    expect(dump.snapshot.migrations).toEqual({
      tool: 'prisma',
      table: '_prisma_migrations',
      applied_count: 2,
      last_migration: SEEDED_MIGRATIONS[1],
      migrations_list: [...SEEDED_MIGRATIONS],
    });
    expect(await readdir(temp)).toEqual([]);
    expect((await readFile(dump.file!)).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');

    const scratch = handler.scratchTarget('verify');
    expect(path.dirname(scratch.name)).toBe(path.dirname(source.name));
    await handler.createDatabase(scratch);
    expect(await handler.isEmpty(scratch)).toBe(true);
    await handler.restore(scratch, { format: 'sqlite', stream: createReadStream(dump.file!), signal: signal() });
    expect(await tableChecksums('sqlite', `sqlite:${scratch.name}`)).toEqual(await tableChecksums('sqlite', source.url));
    expect(await handler.inspect(scratch, PRISMA_DEFAULT)).toEqual(dump.snapshot);
    expect((await readdir(path.dirname(scratch.name))).filter((name) => name.includes('faber-tmp'))).toEqual([]);
    await handler.dropDatabase(scratch);
    expect(existsSync(scratch.name)).toBe(false);
  });

  it('copies the committed state while another connection holds an open write transaction', async () => {
    const { db, handler: own } = await seededHandler();
    const app = new DatabaseSync(sqlitePath(db.url));
    app.exec("BEGIN IMMEDIATE; INSERT INTO blobs VALUES (99, x'00'); DELETE FROM \"with space\"");
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
    const notDatabase = await expectFaberError(handler.restore(target, { format: 'sqlite', stream: garbage, signal: signal() }), 'RESTORE_FAILED');
    expect(notDatabase.message).toContain('not a SQLite database');

    const dump = await dumpTo(handler, 'sqlite', work);
    const bytes = await readFile(dump.file!);
    const damaged = Buffer.from(bytes);
    // Scribble over the middle pages (the b-tree pages of the tables), keep the header intact.
    damaged.fill(0xa5, 4096 * 2, bytes.length - 4096);
    const broken = await expectFaberError(handler.restore(target, { format: 'sqlite', stream: Readable.from([damaged]), signal: signal() }), 'RESTORE_FAILED');
    expect(broken.message).toMatch(/integrity_check|malformed/);
    const siblings = await readdir(path.dirname(target.name));
    expect(siblings.filter((name) => name.startsWith(path.basename(target.name)))).toEqual([]);
  });

  it('aborting a backup mid-stream → CANCELLED and the temp copy is gone', async () => {
    const controller = new AbortController();
    const session = await handler.startDump({ format: 'sqlite', migrations: PRISMA_DEFAULT, signal: controller.signal });
    await new Promise((resolve) => session.stream!.once('data', resolve));
    controller.abort();
    await expectFaberError(session.finished, 'CANCELLED');
    await session.dispose();
    expect(await readdir(temp)).toEqual([]);
  });

  it('replace() renames the restored file over the live one, keeping its mode and dropping stale -wal/-shm', async () => {
    const { db: live, handler: liveHandler } = await seededHandler();
    await chmod(live.name, 0o640);
    const restored = liveHandler.scratchTarget('restore');
    const other = new DatabaseSync(restored.name);
    other.exec('CREATE TABLE replaced_content (x); INSERT INTO replaced_content VALUES (42)');
    other.close();

    await liveHandler.replace(liveHandler.live, restored, { force: false });

    expect(await tableChecksums('sqlite', live.url)).toEqual({ replaced_content: expect.stringMatching(/^1:/) });
    expect((await stat(live.name)).mode & 0o777).toBe(0o640);
    expect(existsSync(restored.name)).toBe(false);
    expect((await readdir(path.dirname(live.name))).sort()).toEqual(['app.db']);
  });

  it('replace() refuses while another process has the database open; force replaces it anyway', async () => {
    const { db: live, handler: liveHandler } = await seededHandler();
    const restored = liveHandler.scratchTarget('restore');
    const fresh = new DatabaseSync(restored.name);
    fresh.exec('CREATE TABLE new_content (x)');
    fresh.close();
    const app = new DatabaseSync(live.name);
    app.prepare('SELECT count(*) FROM blobs').get();
    try {
      const error = await expectFaberError(liveHandler.replace(liveHandler.live, restored, { force: false }), 'CONNECTION_FAILED');
      expect(error.message).toContain('open in another process');
      expect(error.suggestions.join(' ')).toContain('--force');
      expect(Object.keys(await tableChecksums('sqlite', live.url))).toContain('blobs');

      await liveHandler.replace(liveHandler.live, restored, { force: true });
      expect(Object.keys(await tableChecksums('sqlite', live.url))).toEqual(['new_content']);
    } finally {
      app.close();
    }
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
