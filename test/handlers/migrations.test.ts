import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConnectionUrl } from '../../src/config/connection.ts';
import { readMigrationState, type SqlReader } from '../../src/handlers/migrations.ts';
import { connectMysql, type MysqlSession } from '../../src/handlers/mysql-support.ts';
import { postgresReader } from '../../src/handlers/postgresql-support.ts';
import { sqliteReader } from '../../src/handlers/sqlite.ts';
import { adminQuery, freshMysql, freshPostgres, type FreshDatabase } from '../support/databases.ts';
import { expectFaberError } from './helpers.ts';

// Each tool's history table is created as the tool creates it (columns and types), with applied,
// failed and rolled-back rows, and read through the same readers the handlers use.

function sqliteWith(sql: string): SqlReader {
  const db = new DatabaseSync(':memory:');
  db.exec(sql);
  return sqliteReader(db);
}

describe('migration state per tool (SQLite tables)', () => {
  it('prisma: finished and not rolled back, in the order they started', async () => {
    const reader = sqliteWith(`
      CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at DATETIME, migration_name TEXT NOT NULL,
        logs TEXT, rolled_back_at DATETIME, started_at DATETIME NOT NULL, applied_steps_count INTEGER NOT NULL DEFAULT 0);
      INSERT INTO _prisma_migrations VALUES
        ('3', 'c', '2024-03-01 00:00:01', '20240301_third', NULL, NULL, '2024-03-01 00:00:00', 1),
        ('1', 'a', '2024-01-01 00:00:01', '20240101_first', NULL, NULL, '2024-01-01 00:00:00', 1),
        ('2', 'b', '2024-02-01 00:00:01', '20240201_rolled_back', NULL, '2024-02-02 00:00:00', '2024-02-01 00:00:00', 1),
        ('4', 'd', NULL, '20240401_failed_midway', 'error', NULL, '2024-04-01 00:00:00', 0);
    `);
    expect(await readMigrationState(reader, { tool: 'prisma', table: undefined })).toEqual({
      tool: 'prisma',
      table: '_prisma_migrations',
      applied_count: 2,
      last_migration: '20240301_third',
      migrations_list: ['20240101_first', '20240301_third'],
    });
  });

  it('knex: every row of knex_migrations, by id', async () => {
    const reader = sqliteWith(`
      CREATE TABLE knex_migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(255), batch INTEGER, migration_time DATETIME);
      INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('20240101_users.js', 1, 1), ('20240102_posts.js', 1, 2), ('20240201_tags.js', 2, 3);
    `);
    const state = await readMigrationState(reader, { tool: 'knex', table: undefined });
    expect(state).toMatchObject({
      tool: 'knex',
      table: 'knex_migrations',
      applied_count: 3,
      last_migration: '20240201_tags.js',
    });
  });

  it('drizzle: the recorded hashes, by creation time', async () => {
    const reader = sqliteWith(`
      CREATE TABLE __drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at numeric);
      INSERT INTO __drizzle_migrations VALUES (1, 'hash-b', 1700000002000), (2, 'hash-a', 1700000001000);
    `);
    const state = await readMigrationState(reader, { tool: 'drizzle', table: undefined });
    expect(state).toMatchObject({
      tool: 'drizzle',
      table: '__drizzle_migrations',
      migrations_list: ['hash-a', 'hash-b'],
    });
  });

  it('typeorm: the migrations table, by id', async () => {
    const reader = sqliteWith(`
      CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, timestamp bigint NOT NULL, name varchar NOT NULL);
      INSERT INTO migrations (timestamp, name) VALUES (1700000000000, 'Init1700000000000'), (1700000500000, 'AddEmail1700000500000');
    `);
    const state = await readMigrationState(reader, { tool: 'typeorm', table: undefined });
    expect(state).toMatchObject({ tool: 'typeorm', applied_count: 2, last_migration: 'AddEmail1700000500000' });
  });

  it('flyway: successful scripts only, by installed rank', async () => {
    const reader = sqliteWith(`
      CREATE TABLE flyway_schema_history (installed_rank INT PRIMARY KEY, version VARCHAR(50), description VARCHAR(200), type VARCHAR(20),
        script VARCHAR(1000), checksum INT, installed_by VARCHAR(100), installed_on TIMESTAMP, execution_time INT, success BOOLEAN);
      INSERT INTO flyway_schema_history VALUES
        (2, '2', 'add', 'SQL', 'V2__add.sql', 2, 'me', 0, 1, 1),
        (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'me', 0, 1, 1),
        (3, '3', 'broken', 'SQL', 'V3__broken.sql', 3, 'me', 0, 1, 0);
    `);
    const state = await readMigrationState(reader, { tool: 'flyway', table: undefined });
    expect(state).toMatchObject({
      tool: 'flyway',
      migrations_list: ['V1__init.sql', 'V2__add.sql'],
      last_migration: 'V2__add.sql',
    });
  });

  it('migrations.table overrides the tool default; without a tool the table is recognised by its columns', async () => {
    const reader = sqliteWith(`
      CREATE TABLE app_history (id INTEGER PRIMARY KEY, name TEXT, batch INTEGER, migration_time DATETIME);
      INSERT INTO app_history VALUES (1, 'one.js', 1, 0);
      CREATE TABLE odd_history (id INTEGER PRIMARY KEY, label TEXT);
    `);
    expect(await readMigrationState(reader, { tool: 'knex', table: 'app_history' })).toMatchObject({
      tool: 'knex',
      table: 'app_history',
      applied_count: 1,
    });
    expect(await readMigrationState(reader, { tool: undefined, table: 'app_history' })).toMatchObject({
      tool: 'knex',
      last_migration: 'one.js',
    });
    const error = await expectFaberError(
      readMigrationState(reader, { tool: undefined, table: 'odd_history' }),
      'CONFIG_INVALID',
    );
    expect(error.suggestions.join(' ')).toContain('migration_tool');
  });

  it('a missing table means nothing applied yet, never an error', async () => {
    const reader = sqliteWith('CREATE TABLE unrelated (x)');
    expect(await readMigrationState(reader, { tool: 'knex', table: undefined })).toEqual({
      tool: 'knex',
      table: 'knex_migrations',
      applied_count: 0,
      last_migration: null,
      migrations_list: [],
    });
    expect(await readMigrationState(reader, { tool: undefined, table: undefined })).toEqual({
      tool: 'none',
      table: null,
      applied_count: 0,
      last_migration: null,
      migrations_list: [],
    });
    expect(await readMigrationState(reader, { tool: 'none', table: 'knex_migrations' })).toMatchObject({
      tool: 'none',
      applied_count: 0,
    });
  });
});

describe('migration state on PostgreSQL', () => {
  let db: FreshDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await freshPostgres();
    await adminQuery(
      'postgresql',
      [
        `CREATE SCHEMA drizzle;
         CREATE TABLE drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint);
         INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('h1', 1), ('h2', 2);
         CREATE SCHEMA app;
         CREATE TABLE app._prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
           migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(),
           applied_steps_count integer NOT NULL DEFAULT 0);
         INSERT INTO app._prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('1', 'c', now(), 'in_app_schema');`,
      ],
      db.name,
    );
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  function reader(url: string): SqlReader {
    const connection = parseConnectionUrl(url, 'postgresql', '/');
    return postgresReader(client, connection, connection.redacted);
  }

  it('drizzle keeps its table in the drizzle schema', async () => {
    expect(await readMigrationState(reader(db.url), { tool: 'drizzle', table: undefined })).toMatchObject({
      table: 'drizzle.__drizzle_migrations',
      migrations_list: ['h1', 'h2'],
    });
  });

  it("prisma's ?schema= in the URL, or an explicit schema.table, finds the table outside the search path", async () => {
    expect(await readMigrationState(reader(db.url), { tool: undefined, table: undefined })).toMatchObject({
      tool: 'none',
      applied_count: 0,
    });
    expect(
      await readMigrationState(reader(`${db.url}?schema=app`), { tool: undefined, table: undefined }),
    ).toMatchObject({
      tool: 'prisma',
      table: 'app._prisma_migrations',
      last_migration: 'in_app_schema',
    });
    expect(await readMigrationState(reader(db.url), { tool: 'prisma', table: 'app._prisma_migrations' })).toMatchObject(
      { applied_count: 1 },
    );
  });
});

describe('migration state on MySQL', () => {
  let db: FreshDatabase;
  let session: MysqlSession;

  beforeAll(async () => {
    db = await freshMysql();
    await adminQuery(
      'mysql',
      [
        `CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL PRIMARY KEY, version VARCHAR(50), description VARCHAR(200) NOT NULL,
           type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, checksum INT, installed_by VARCHAR(100) NOT NULL,
           installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, execution_time INT NOT NULL, success TINYINT(1) NOT NULL)`,
        `INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, installed_by, execution_time, success) VALUES
           (1, '1', 'init', 'SQL', 'V1__init.sql', 'me', 5, 1), (2, '2', 'bad', 'SQL', 'V2__bad.sql', 'me', 5, 0)`,
      ],
      db.name,
    );
    const connection = parseConnectionUrl(db.url, 'mysql', '/');
    session = await connectMysql(connection, db.name, connection.redacted, 'BACKUP_FAILED');
  });

  afterAll(async () => {
    await session?.end();
    await db?.drop();
  });

  it('flyway success is a TINYINT there; failed rows are still excluded', async () => {
    expect(await readMigrationState(session.reader, { tool: 'flyway', table: undefined })).toMatchObject({
      applied_count: 1,
      migrations_list: ['V1__init.sql'],
    });
  });

  it('an absent table reads as nothing applied', async () => {
    expect(await readMigrationState(session.reader, { tool: 'typeorm', table: undefined })).toMatchObject({
      tool: 'typeorm',
      applied_count: 0,
    });
  });
});
