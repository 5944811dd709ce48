import { createReadStream, existsSync, statSync } from 'node:fs';
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandler } from '../../src/handlers/handler.ts';
import { PostgresHandler } from '../../src/handlers/postgresql.ts';
import { parseConnectionUrl } from '../../src/config/connection.ts';
import {
  adminQuery,
  createPasswordUser,
  databaseUrl,
  freshPostgres,
  type FreshDatabase,
} from '../support/databases.ts';
import { seedAwkwardData, tableChecksums } from '../support/fixtures.ts';
import {
  dumpTo,
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

/** A database big enough (about 2 MB of dump) that pg_dump blocks on a full pipe until read. */
async function bigDatabaseOf(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    'CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 3) AS filler FROM generate_series(1, 20000) g',
  );
  await client.end();
}

/** The data lines of one table's COPY block in a plain dump. */
function copyRows(dump: string, table: string): string[] {
  const start = dump.indexOf(`COPY ${table} (`);
  expect(start).toBeGreaterThan(-1);
  const end = dump.indexOf('\n\\.\n', start);
  return dump.slice(dump.indexOf('\n', start) + 1, end).split('\n');
}

beforeAll(async () => {
  ({ work, source, handler } = await seededHandler('postgresql', freshPostgres, created));
});

afterAll(() => disposeSeeded(handler, created, work));

describe('PostgresHandler preflight', () => {
  it('reports pg_dump and server versions and the database size', async () => {
    const info = await handler.preflight();
    expect(info.clientTool).toBe('pg_dump');
    expect(info.clientVersion).toMatch(/^\d+(\.\d+)?/);
    expect(info.serverVersion).toMatch(/^\d+(\.\d+)?/);
    expect(info.databaseSizeBytes).toBeGreaterThan(1_000_000);
  });

  it('a pg_dump older than the server → TOOL_VERSION_MISMATCH naming both versions and the fix', async () => {
    const bin = path.join(work, 'old-bin');
    await rm(bin, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(bin));
    // A stand-in that only answers --version: the check is pure logic on the version numbers.
    await writeFile(path.join(bin, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n');
    await chmod(path.join(bin, 'pg_dump'), 0o755);
    const old = await makeHandler('postgresql', source.url, work, { ...process.env, PATH: bin });
    const error = await expectFaberError(old.preflight(), 'TOOL_VERSION_MISMATCH');
    const server = (await handler.preflight()).serverVersion;
    expect(error.message).toContain('9.6.24');
    expect(error.message).toContain(server);
    expect(error.suggestions.join(' ')).toMatch(/postgresql-client-\d+/);
  });

  it('no pg_dump on PATH → TOOL_NOT_FOUND with install commands', async () => {
    const none = await makeHandler('postgresql', source.url, work, {
      ...process.env,
      PATH: path.join(work, 'nothing-here'),
    });
    const error = await expectFaberError(none.preflight(), 'TOOL_NOT_FOUND');
    expect(error.suggestions.join('\n')).toContain('apt-get install postgresql-client');
    expect(error.suggestions.join('\n')).toContain('brew install libpq');
    await expectFaberError(
      none.restore(none.target('whatever'), { format: 'sql', stream: Readable.from(['SELECT 1;']), signal: signal() }),
      'TOOL_NOT_FOUND',
    );
  });

  it('unknown role with a password → AUTHENTICATION_FAILED from the driver and from psql, password nowhere', async () => {
    // The local server trusts 127.0.0.1, so an unknown role is the authentication failure it can produce.
    const password = 's3cr@t:/%pw';
    const url = `postgres://no_such_role_faber:${encodeURIComponent(password)}@127.0.0.1:5432/${source.name}`;
    const stranger = await makeHandler('postgresql', url, work);
    for (const attempt of [
      () => stranger.preflight(),
      () => stranger.restore(stranger.live, { format: 'sql', stream: Readable.from(['SELECT 1;']), signal: signal() }),
    ]) {
      const error = await expectFaberError(attempt(), 'AUTHENTICATION_FAILED');
      for (const form of secretForms(password)) expect(everythingShown(error)).not.toContain(form);
    }
  });

  it('unreachable port → CONNECTION_FAILED without the password', async () => {
    const unreachable = await makeHandler(
      'postgresql',
      'postgres://postgres:hunter2hunter2@127.0.0.1:1/postgres',
      work,
    );
    const error = await expectFaberError(unreachable.preflight(), 'CONNECTION_FAILED');
    expect(everythingShown(error)).not.toContain('hunter2hunter2');
    await expectFaberError(
      unreachable.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() }),
      'CONNECTION_FAILED',
    );
  });
});

describe('PostgresHandler consistency and failures', () => {
  it('the dump and its row counts come from the same snapshot, even when rows are added meanwhile', async () => {
    const db = await freshPostgres();
    created.push(db);
    await seedAwkwardData('postgresql', db.url);
    const own = await makeHandler('postgresql', db.url, work);
    const session = await own.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() });
    await adminQuery(
      'postgresql',
      [`INSERT INTO public.blobs VALUES (99, '\\x00')`, `DELETE FROM "Extra Schema"."with space" WHERE id > 50`],
      db.name,
    );
    const chunks: Buffer[] = [];
    session.stream!.on('data', (chunk: Buffer) => chunks.push(chunk));
    await session.finished;
    const dump = Buffer.concat(chunks).toString();
    const { tableRowCounts } = await session.snapshot;
    expect(tableRowCounts['public.blobs']).toBe(5);
    expect(tableRowCounts['"Extra Schema"."with space"']).toBe(100);
    expect(copyRows(dump, 'public.blobs')).toHaveLength(5);
    expect(copyRows(dump, '"Extra Schema"."with space"')).toHaveLength(100);
  });

  it('a failing SQL restore → RESTORE_FAILED quoting psql, and nothing is left half-loaded', async () => {
    const scratch = handler.scratchTarget('restore');
    await handler.createDatabase(scratch);
    try {
      const script = 'CREATE TABLE half (x int);\nINSERT INTO half VALUES (1);\nSELECT no_such_function();\n';
      const error = await expectFaberError(
        handler.restore(scratch, { format: 'sql', stream: Readable.from([script]), signal: signal() }),
        'RESTORE_FAILED',
      );
      expect(error.message).toContain('no_such_function');
      expect(await handler.isEmpty(scratch)).toBe(true);
    } finally {
      await handler.dropDatabase(scratch);
    }
  });

  it('an input stream that breaks mid-restore kills psql before it can commit', async () => {
    const scratch = handler.scratchTarget('restore');
    await handler.createDatabase(scratch);
    try {
      async function* brokenInput() {
        yield 'CREATE TABLE partial (x int);\nINSERT INTO partial VALUES (1);\n';
        await new Promise((resolve) => setTimeout(resolve, 200));
        throw new Error('zstd: corrupted block');
      }
      const error = await expectFaberError(
        handler.restore(scratch, { format: 'sql', stream: Readable.from(brokenInput()), signal: signal() }),
        'RESTORE_FAILED',
      );
      expect(error.message).toContain('corrupted block');
      expect(await handler.isEmpty(scratch)).toBe(true);
    } finally {
      await handler.dropDatabase(scratch);
    }
  });
});

describe('PostgresHandler secrets and cancellation', () => {
  let user: FreshDatabase & { password: string };
  let userHandler: DatabaseHandler;

  beforeAll(async () => {
    user = await createPasswordUser('postgresql');
    created.push(user);
    await bigDatabaseOf(user.url);
    userHandler = await makeHandler('postgresql', user.url, work);
  });

  it('pg_dump gets no password in argv or environment; the passfile is 0600 and removed afterwards', async () => {
    const session = await userHandler.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() });
    const pid = await waitForChild('pg_dump');
    const [cmdline, environ] = await Promise.all([procText(pid, 'cmdline'), procText(pid, 'environ')]);
    for (const form of secretForms(user.password)) {
      expect(cmdline).not.toContain(form);
      expect(environ).not.toContain(form);
    }
    expect(cmdline).toContain('--snapshot=');
    const passfile = /PGPASSFILE=(\S+)/.exec(environ)?.[1];
    expect(passfile).toBeDefined();
    expect(statSync(passfile!).mode & 0o777).toBe(0o600);
    expect(path.dirname(passfile!)).toBe(work);
    session.stream!.resume();
    await session.finished;
    expect(existsSync(passfile!)).toBe(false);
  });

  it('a non-superuser owner restores its own custom-format backup, owners kept', async () => {
    const dump = await dumpTo(userHandler, 'custom', work);
    const scratch = userHandler.scratchTarget('verify');
    await userHandler.createDatabase(scratch);
    try {
      await userHandler.restore(scratch, { format: 'custom', stream: createReadStream(dump.file!), signal: signal() });
      expect(await tableChecksums('postgresql', databaseUrl(user.url, scratch.name))).toEqual(
        await tableChecksums('postgresql', user.url),
      );
      const [owner] = await adminQuery(
        'postgresql',
        ["SELECT tableowner FROM pg_tables WHERE tablename = 'big'"],
        scratch.name,
      );
      expect(owner?.tableowner).toBe(new URL(user.url).username);
    } finally {
      await userHandler.dropDatabase(scratch);
    }
  });

  it('aborting mid-dump → CANCELLED, pg_dump is gone and the snapshot connection closed', async () => {
    const controller = new AbortController();
    const session = await userHandler.startDump({
      format: 'custom',
      migrations: PRISMA_DEFAULT,
      signal: controller.signal,
    });
    const pid = await waitForChild('pg_dump');
    const first = await new Promise<Buffer>((resolve) => session.stream!.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    session.stream!.pause();
    controller.abort();
    await expectFaberError(session.finished, 'CANCELLED');
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    const sessions = await adminQuery('postgresql', [
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${user.name}' AND application_name = 'faber-db'`,
    ]);
    expect(sessions[0]?.n).toBe(0);
    await session.dispose();
  });

  it('dispose() stops a running dump', async () => {
    const session = await userHandler.startDump({ format: 'sql', migrations: PRISMA_DEFAULT, signal: signal() });
    const pid = await waitForChild('pg_dump');
    await session.dispose();
    await session.dispose();
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    await expectFaberError(session.finished, 'CANCELLED');
  });
});

describe('PostgresHandler targets', () => {
  it('scratch names are unique, marked and at most 63 bytes even for long multibyte names', () => {
    const longName = 'ünïcödé_'.repeat(8);
    const long = new PostgresHandler(
      parseConnectionUrl(`postgres://u@h/${encodeURIComponent(longName)}`, 'postgresql', '/'),
      { env: {}, tempDirectory: work },
    );
    const names = new Set(Array.from({ length: 50 }, () => long.scratchTarget('verify').name));
    expect(names.size).toBe(50);
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^ünïcödé_.*__faber_verify_[0-9a-f]{8}$/);
    }
    expect(long.target('other').display).toBe('postgres://u@h/other');
  });
});
