import { chmod, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { describe, expect } from 'vitest';
import { adminQuery, databaseUrl, freshMysql, freshPostgres, freshSqlite } from '../support/databases.ts';
import { handlerContract, type ContractEngine } from './contract.ts';

/** The seeded fixture (support/fixtures.ts) as each engine's inspect() names its tables. */
const COUNTS = { 'Mixed Case': 300, _prisma_migrations: 3, blobs: 5, 'with space': 100 };

const postgresql: ContractEngine = {
  provider: 'postgresql',
  formats: ['sql', 'custom', 'directory'],
  foreignFormat: { format: 'sqlite', refusal: /sql, custom or directory/ },
  expectedCounts: {
    '"Extra Schema"."with space"': 100,
    'public."Mixed Case"': 300,
    'public._prisma_migrations': 3,
    'public.blobs': 5,
  },
  tableName: (table) => `public.${table}`,
  fresh: freshPostgres,
  urlOf: (db, target) => databaseUrl(db.url, target.name),
  exec: async (url, statements) => {
    await adminQuery('postgresql', statements, decodeURIComponent(new URL(url).pathname.slice(1)));
  },
  clientTools: ['pg_dump'],
  failingRestore: { dump: 'CREATE TABLE half (x int);\nSELECT no_such_function();\n', quoted: /no_such_function/ },
  async useDatabase(url) {
    const app = new pg.Client({ connectionString: url, application_name: 'the-app' });
    app.on('error', () => {});
    await app.connect();
    return {
      named: 'the-app',
      ended: () =>
        app.query('SELECT 1').then(
          () => false,
          () => true,
        ),
      close: () => app.end().catch(() => {}),
    };
  },
  async leftovers(live) {
    const rows = await adminQuery('postgresql', [
      `SELECT datname FROM pg_database WHERE datname LIKE '${live.name}\\_\\_faber%'`,
    ]);
    return rows.map((row) => String(row.datname));
  },
};

/** Views and triggers are not tables: they must survive a restore too. */
async function viewsAndTriggers(database: string): Promise<string[]> {
  const rows = await adminQuery('mysql', [
    `SELECT CONCAT('view ', table_name) AS name FROM information_schema.views WHERE table_schema = '${database}'
     UNION ALL SELECT CONCAT('trigger ', trigger_name) FROM information_schema.triggers WHERE trigger_schema = '${database}' ORDER BY 1`,
  ]);
  return rows.map((row) => String(row.name));
}

const mariadb: ContractEngine = {
  provider: 'mysql',
  formats: ['sql'],
  foreignFormat: { format: 'custom', refusal: /sql/ },
  expectedCounts: COUNTS,
  tableName: (table) => table,
  fresh: freshMysql,
  urlOf: (db, target) => databaseUrl(db.url, target.name),
  exec: async (url, statements) => {
    await adminQuery('mysql', statements, decodeURIComponent(new URL(url).pathname.slice(1)));
  },
  clientTools: ['mariadb-dump', 'mysqldump'],
  failingRestore: { dump: 'CREATE TABLE t (x INT);\nINSERT INTO no_such_table VALUES (1);\n', quoted: /no_such_table/ },
  async useDatabase(url) {
    const app = await mysql.createConnection({ uri: url });
    app.on('error', () => {});
    return {
      named: 'other session(s) are connected',
      ended: () =>
        app.query('SELECT 1').then(
          () => false,
          () => true,
        ),
      close: () => app.end().catch(() => {}),
    };
  },
  async leftovers(live) {
    const rows = await adminQuery('mysql', [
      `SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE '${live.name}%'`,
    ]);
    return rows.map((row) => String(row.name)).filter((name) => name !== live.name);
  },
  async afterRestore(_db, target) {
    expect(Buffer.byteLength(target.name)).toBeLessThanOrEqual(64);
    expect(await viewsAndTriggers(target.name)).toEqual(['trigger label trim', 'view labels']);
  },
  async afterReplace(live) {
    expect(await viewsAndTriggers(live.name)).toEqual(['trigger label trim', 'view labels']);
  },
};

const sqlite: ContractEngine = {
  provider: 'sqlite',
  formats: ['sqlite'],
  foreignFormat: { format: 'sql', refusal: /sqlite/ },
  expectedCounts: COUNTS,
  tableName: (table) => table,
  fresh: freshSqlite,
  urlOf: (_db, target) => `sqlite:${target.name}`,
  exec: (url, statements) => {
    const db = new DatabaseSync(url.replace(/^sqlite:/, ''));
    try {
      // WAL, as the seeded fixture and most applications: -wal/-shm show who has it open.
      db.exec('PRAGMA journal_mode = WAL');
      for (const statement of statements) db.exec(statement);
    } finally {
      db.close();
    }
    return Promise.resolve();
  },
  clientTools: ['node:sqlite'],
  failingRestore: { dump: 'definitely not SQLite '.repeat(100), quoted: /not a SQLite database/ },
  useDatabase(url) {
    const app = new DatabaseSync(url.replace(/^sqlite:/, ''));
    app.prepare('SELECT count(*) FROM sqlite_master').get();
    return Promise.resolve({ named: 'open in another process', close: () => Promise.resolve(app.close()) });
  },
  async leftovers(live) {
    return (await readdir(path.dirname(live.name))).filter((name) => name !== path.basename(live.name));
  },
  async afterRestore(db, target) {
    expect(path.dirname(target.name)).toBe(path.dirname(db.name));
    expect((await readdir(path.dirname(target.name))).filter((name) => name.includes('faber-tmp'))).toEqual([]);
  },
  async beforeReplace(live) {
    await chmod(live.name, 0o640);
  },
  async afterReplace(live) {
    expect((await stat(live.name)).mode & 0o777).toBe(0o640);
  },
};

for (const engine of [postgresql, mariadb, sqlite]) {
  describe(`${engine.provider} handler contract`, () => handlerContract(engine));
}
