import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import type { ServerLocation } from './global-setup.ts';

/**
 * Fresh, uniquely named databases on the servers global-setup found. Each test creates what it
 * uses and drops it; parallel workers and parallel test runs never share a database.
 */

export type ServerKind = 'postgresql' | 'mysql';

export interface FreshDatabase {
  /** Connection URL of the new database (password percent-encoded). */
  url: string;
  /** Database name, or the file path for SQLite. */
  name: string;
  /** Drops the database (and, for password users, the user); safe to call more than once. */
  drop(): Promise<void>;
}

export interface PasswordUser extends FreshDatabase {
  user: string;
  /** The raw password (contains @ : / % and quote characters). */
  password: string;
}

function serverUrl(kind: ServerKind): string {
  const location: ServerLocation = inject(kind === 'postgresql' ? 'faberPostgres' : 'faberMysql');
  if ('error' in location) throw new Error(location.error);
  return location.url;
}

/** `faber_t_lq3k2x_9f3a1c`: sortable by creation, unique across workers and runs. */
export function uniqueName(prefix = 'faber_t'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** The same server URL pointing at another database. */
export function databaseUrl(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = '/' + encodeURIComponent(database);
  return parsed.toString();
}

/** Runs statements on the admin connection of a server (or on one of its databases). */
export async function adminQuery(
  kind: ServerKind,
  statements: readonly string[],
  database?: string,
): Promise<Record<string, unknown>[]> {
  const url = database ? databaseUrl(serverUrl(kind), database) : serverUrl(kind);
  let rows: Record<string, unknown>[] = [];
  if (kind === 'postgresql') {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    try {
      for (const statement of statements) rows = (await client.query<Record<string, unknown>>(statement)).rows;
    } finally {
      await client.end();
    }
    return rows;
  }
  const connection = await mysql.createConnection({ uri: url });
  try {
    for (const statement of statements) rows = (await connection.query(statement))[0] as Record<string, unknown>[];
  } finally {
    await connection.end();
  }
  return rows;
}

function once(action: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= action());
}

export async function freshPostgres(): Promise<FreshDatabase> {
  const name = uniqueName();
  await adminQuery('postgresql', [`CREATE DATABASE "${name}"`]);
  return {
    url: databaseUrl(serverUrl('postgresql'), name),
    name,
    drop: once(async () => {
      await adminQuery('postgresql', [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
    }),
  };
}

export async function freshMysql(): Promise<FreshDatabase> {
  const name = uniqueName();
  await adminQuery('mysql', [`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`]);
  return {
    url: databaseUrl(serverUrl('mysql'), name),
    name,
    drop: once(async () => {
      await adminQuery('mysql', [`DROP DATABASE IF EXISTS \`${name}\``]);
    }),
  };
}

/** A new (not yet created) database file in its own temporary directory. */
export async function freshSqlite(): Promise<FreshDatabase> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'faber-sqlite-'));
  const file = path.join(directory, 'app.db');
  return {
    url: `sqlite:${file}`,
    name: file,
    drop: once(() => rm(directory, { recursive: true, force: true })),
  };
}

/** A password with every character that breaks naive URL, option-file and passfile handling. */
function awkwardPassword(): string {
  return `pw@:/%"\\#;${randomBytes(6).toString('hex')}`;
}

/** Escapes `_` and `%`, which are wildcards in MySQL database grants. */
function grantPattern(name: string): string {
  return name.replace(/[_%\\]/g, (character) => `\\${character}`);
}

/**
 * A login role/user with an awkward random password that owns (PostgreSQL) or has all rights on
 * (MySQL) a fresh database; on MySQL also on databases named `<db>...` (handler scratch copies).
 */
export async function createPasswordUser(kind: ServerKind): Promise<PasswordUser> {
  const user = uniqueName('faber_u');
  const password = awkwardPassword();
  const name = uniqueName();
  const credentials = `${user}:${encodeURIComponent(password)}@`;
  const base = new URL(serverUrl(kind));
  const url = `${base.protocol}//${credentials}${base.host}/${name}`;
  if (kind === 'postgresql') {
    await adminQuery('postgresql', [
      `CREATE ROLE "${user}" LOGIN CREATEDB PASSWORD '${password}'`,
      `CREATE DATABASE "${name}" OWNER "${user}"`,
    ]);
    const drop = once(async () => {
      await adminQuery('postgresql', [
        `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
        `DROP ROLE IF EXISTS "${user}"`,
      ]);
    });
    return { url, name, user, password, drop };
  }
  const connection = await mysql.createConnection({ uri: serverUrl('mysql') });
  try {
    await connection.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    await connection.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, password]);
    await connection.query(`GRANT ALL PRIVILEGES ON \`${grantPattern(name)}%\`.* TO ?@'%'`, [user]);
  } finally {
    await connection.end();
  }
  const drop = once(async () => {
    await adminQuery('mysql', [`DROP DATABASE IF EXISTS \`${name}\``, `DROP USER IF EXISTS '${user}'@'%'`]);
  });
  return { url, name, user, password, drop };
}

/** Maps a kind to the server's admin URL (for tests that need to reach the server directly). */
export function adminUrl(kind: ServerKind): string {
  return serverUrl(kind);
}

/**
 * Fresh databases a test file makes, dropped after it: `const track = tracked(); … await track(freshPostgres())`.
 * Registers its own afterAll, so call it at the top level of a test file.
 */
export function tracked(): (fresh: Promise<FreshDatabase>) => Promise<FreshDatabase> {
  const created: FreshDatabase[] = [];
  afterAll(async () => {
    for (const db of created) await db.drop();
  });
  return async (fresh) => {
    const db = await fresh;
    created.push(db);
    return db;
  };
}
