import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandler } from '../../src/handlers/handler.ts';
import {
  adminQuery,
  createPasswordUser,
  freshMysql,
  uniqueName,
  type FreshDatabase,
  type PasswordUser,
} from '../support/databases.ts';
import {
  childProcesses,
  everythingShown,
  disposeSeeded,
  expectFaberError,
  makeHandler,
  PRISMA_DEFAULT,
  procText,
  secretForms,
  seededHandler,
  waitForChild,
} from './helpers.ts';

const created: FreshDatabase[] = [];
let source: FreshDatabase;
let handler: DatabaseHandler;
let work: string;

function signal(): AbortSignal {
  return new AbortController().signal;
}

async function connect(url: string): Promise<mysql.Connection> {
  const parsed = new URL(url);
  return mysql.createConnection({
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: decodeURIComponent(parsed.pathname.slice(1)),
  });
}

/** About 2 MB of dump, so that mariadb-dump blocks on a full pipe until the stream is read. */
async function fillBigTable(url: string): Promise<void> {
  const connection = await connect(url);
  await connection.query('CREATE TABLE big (id INT PRIMARY KEY, filler VARCHAR(100))');
  const rows = Array.from({ length: 20000 }, (_, index) => [index, `${index}`.padEnd(96, 'x')]);
  await connection.query('INSERT INTO big VALUES ?', [rows]);
  await connection.end();
}

beforeAll(async () => {
  ({ work, source, handler } = await seededHandler('mysql', freshMysql, created));
});

afterAll(() => disposeSeeded(handler, created, work));

describe('MysqlHandler preflight and failures', () => {
  it('reports the dump tool, both versions and the database size', async () => {
    const info = await handler.preflight();
    expect(['mariadb-dump', 'mysqldump']).toContain(info.clientTool);
    expect(info.clientVersion).toMatch(/^\d+\.\d+/);
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    expect(info.databaseSizeBytes).toBeGreaterThan(0);
    expect(handler.backupMethod('sql')).toBe(info.clientTool);
  });

  it('no dump tool on PATH → TOOL_NOT_FOUND with install commands', async () => {
    const none = await makeHandler('mysql', source.url, work, {
      ...process.env,
      PATH: path.join(work, 'nothing-here'),
    });
    const error = await expectFaberError(none.preflight(), 'TOOL_NOT_FOUND');
    expect(error.message).toContain('mariadb-dump or mysqldump');
    expect(error.suggestions.join('\n')).toContain('apt-get install mariadb-client');
  });

  it('wrong password → AUTHENTICATION_FAILED from the driver and from the mariadb client, password nowhere', async () => {
    const user = await createPasswordUser('mysql');
    created.push(user);
    const wrongPassword = 'Wr0ng@pass:/%"\\';
    const wrong = new URL(user.url);
    wrong.password = encodeURIComponent(wrongPassword);
    const impostor = await makeHandler('mysql', wrong.toString(), work);
    for (const attempt of [
      () => impostor.preflight(),
      () => impostor.restore(impostor.live, { format: 'sql', stream: Readable.from(['SELECT 1;']), signal: signal() }),
    ]) {
      const error = await expectFaberError(attempt(), 'AUTHENTICATION_FAILED');
      for (const form of secretForms(wrongPassword)) expect(everythingShown(error)).not.toContain(form);
    }
  });

  it('unreachable port → CONNECTION_FAILED', async () => {
    const unreachable = await makeHandler('mysql', 'mysql://root:hunter2hunter2@127.0.0.1:1/nope', work);
    const error = await expectFaberError(unreachable.preflight(), 'CONNECTION_FAILED');
    expect(everythingShown(error)).not.toContain('hunter2hunter2');
  });
});

describe('MysqlHandler secrets and cancellation', () => {
  let user: PasswordUser;
  let userHandler: DatabaseHandler;

  beforeAll(async () => {
    user = await createPasswordUser('mysql');
    created.push(user);
    await fillBigTable(user.url);
    userHandler = await makeHandler('mysql', user.url, work);
  });

  it('mariadb-dump gets the password only through a 0600 defaults file (first argument) that is removed afterwards', async () => {
    const session = await userHandler.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() });
    const pid = await waitForChild(userHandler.backupMethod('sql'));
    const cmdline = await procText(pid, 'cmdline');
    for (const form of secretForms(user.password)) {
      expect(cmdline).not.toContain(form);
      expect(await procText(pid, 'environ')).not.toContain(form);
    }
    const optionFile = /^\S+ --defaults-extra-file=(\S+) /.exec(cmdline)?.[1];
    expect(optionFile).toBeDefined();
    expect(path.dirname(optionFile!)).toBe(work);
    expect(statSync(optionFile!).mode & 0o777).toBe(0o600);
    const chunks: Buffer[] = [];
    session.stream!.on('data', (chunk: Buffer) => chunks.push(chunk));
    await session.finished;
    expect(existsSync(optionFile!)).toBe(false);
    // The awkward password really authenticated: the dump is complete.
    expect(Buffer.concat(chunks).toString()).toMatch(/-- Dump completed/);
    expect((await session.snapshot).tableRowCounts).toEqual({ big: 20000 });
  });

  it('a restore as that user, into a database it may create, works with the same option file', async () => {
    const scratch = userHandler.scratchTarget('verify');
    await userHandler.createDatabase(scratch);
    try {
      await userHandler.restore(scratch, {
        format: 'sql',
        stream: Readable.from(['CREATE TABLE ok (x INT);\nINSERT INTO ok VALUES (7);\n']),
        signal: signal(),
      });
      expect((await userHandler.inspect(scratch, PRISMA_DEFAULT)).tableRowCounts).toEqual({ ok: 1 });
    } finally {
      await userHandler.dropDatabase(scratch);
    }
  });

  it('aborting mid-dump → CANCELLED, the dump tool is gone and its option file removed', async () => {
    const controller = new AbortController();
    const session = await userHandler.startDump({
      format: 'sql',
      migrations: PRISMA_DEFAULT,
      signal: controller.signal,
    });
    const pid = await waitForChild(userHandler.backupMethod('sql'));
    const optionFile = /--defaults-extra-file=(\S+)/.exec(await procText(pid, 'cmdline'))![1]!;
    await new Promise((resolve) => session.stream!.once('data', resolve));
    session.stream!.pause();
    controller.abort();
    await expectFaberError(session.finished, 'CANCELLED');
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(existsSync(optionFile)).toBe(false);
    await session.dispose();
  });
});

describe('MysqlHandler routines another user defined', () => {
  /** A database with a procedure and a function defined by root, and a user with a unique name and only `grants`. */
  async function databaseWithRootRoutines(grants: string): Promise<{ db: FreshDatabase; user: string; url: string }> {
    const db = await freshMysql();
    created.push(db);
    const user = uniqueName('faber_u');
    await adminQuery(
      'mysql',
      [
        'CREATE PROCEDURE root_proc() SELECT 1',
        'CREATE FUNCTION root_fn() RETURNS INT DETERMINISTIC RETURN 7',
        'CREATE TABLE t (x INT)',
      ],
      db.name,
    );
    await adminQuery('mysql', [`CREATE USER '${user}'@'%'`, `GRANT ${grants} ON \`${db.name}\`.* TO '${user}'@'%'`]);
    const url = new URL(db.url);
    url.username = user;
    url.password = '';
    return { db, user, url: url.toString() };
  }

  async function dumpText(own: DatabaseHandler): Promise<string> {
    const session = await own.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() });
    const chunks: Buffer[] = [];
    session.stream!.on('data', (chunk: Buffer) => chunks.push(chunk));
    await session.finished;
    return Buffer.concat(chunks).toString();
  }

  it('a user who may not read mysql.proc (root defined the routines) → PERMISSION_DENIED naming the grant; with it the dump holds them', async () => {
    const { user, url } = await databaseWithRootRoutines('SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES');
    try {
      const own = await makeHandler('mysql', url, work);
      const error = await expectFaberError(dumpText(own), 'PERMISSION_DENIED');
      expect(error.message).toContain('stored procedures and functions');
      expect(error.result.grant).toContain(`GRANT SELECT ON mysql.proc TO '${user}'@'%';`);
      expect(error.suggestions[0]).toContain('mysql.proc');

      await adminQuery('mysql', [`GRANT SELECT ON mysql.proc TO '${user}'@'%'`]);
      const dump = await dumpText(own);
      expect(dump).toContain('PROCEDURE `root_proc`');
      expect(dump).toContain('FUNCTION `root_fn`');
    } finally {
      await adminQuery('mysql', [`DROP USER IF EXISTS '${user}'@'%'`]);
    }
  });

  it('a user with every right on the database but not on mysql.proc → PERMISSION_DENIED naming the routines it cannot read', async () => {
    const { user, url } = await databaseWithRootRoutines('ALL');
    try {
      const own = await makeHandler('mysql', url, work);
      const error = await expectFaberError(dumpText(own), 'PERMISSION_DENIED');
      expect(error.result.unreadable_routines).toEqual(['function root_fn', 'procedure root_proc']);
      expect(error.result.grant).toContain('mysql.proc');
      // The dump runs while the checks do: it is stopped, and its option file removed, before the error.
      expect((await readdir(work)).filter((name) => name.startsWith('faber-my-'))).toEqual([]);
      expect([...(await childProcesses('mariadb-dump')), ...(await childProcesses('mysqldump'))]).toEqual([]);
    } finally {
      await adminQuery('mysql', [`DROP USER IF EXISTS '${user}'@'%'`]);
    }
  });

  it('routines the user defined itself need no extra grant', async () => {
    const { db, user, url } = await databaseWithRootRoutines('ALL');
    try {
      await adminQuery('mysql', ['DROP PROCEDURE root_proc', 'DROP FUNCTION root_fn'], db.name);
      const connection = await connect(url);
      await connection.query('CREATE PROCEDURE own_proc() SELECT 2');
      await connection.end();
      expect(await dumpText(await makeHandler('mysql', url, work))).toContain('PROCEDURE `own_proc`');
    } finally {
      await adminQuery('mysql', [`DROP USER IF EXISTS '${user}'@'%'`]);
    }
  });
});
