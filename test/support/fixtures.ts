import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { ServerKind } from './databases.ts';

/**
 * Awkward content for round-trip tests, and a content checksum per table to compare a source
 * database with its restored copy. The checksums are computed independently of the handlers.
 */

export type DatabaseKind = ServerKind | 'sqlite';

/** Applied migrations of the seeded `_prisma_migrations` (a rolled-back one sits between them). */
export const SEEDED_MIGRATIONS = ['20240101000000_init', '20240201000000_add_posts'] as const;
export const MIXED_CASE_ROWS = 300;
export const WITH_SPACE_ROWS = 100;
export const BLOB_ROWS = 5;

const TEXTS = [
  'plain ascii',
  'emoji 🦀🚀👩🏽‍💻 and a flag 🇳🇱',
  'RTL שלום עולם · مرحبا بالعالم',
  'combining e\u0301 a\u0308 n\u0303 (decomposed)',
  'zero\u200bwidth and \u200dzwj',
  `quotes ' " \` and back\\slash`,
  'line\nbreak\ttab\r\nCRLF',
  '',
  'Straße ümlaut 中文字符 日本語',
  'control \u0001\u0007\u001f chars',
  '-- looks like SQL; DROP TABLE x; /* */',
  '\\. \\N \\\\ COPY escapes',
];

interface MixedRow {
  id: number;
  text: string;
  note: string | null;
  amount: string | null;
  created: Date | null;
}

function mixedRows(): MixedRow[] {
  return Array.from({ length: MIXED_CASE_ROWS }, (_, index) => {
    const id = index + 1;
    return {
      id,
      text: `${TEXTS[id % TEXTS.length]} #${id}`,
      note: id % 7 === 0 ? null : TEXTS[(id * 5) % TEXTS.length]!,
      amount: id % 5 === 0 ? null : (id * 12.34 - 1000).toFixed(2),
      created: id % 11 === 0 ? null : new Date(Date.UTC(2024, 0, 1) + id * 3_600_123),
    };
  });
}

function blobs(): Array<{ id: number; data: Buffer | null }> {
  const every = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte));
  const pattern = Buffer.from(Array.from({ length: 4096 }, (_, index) => (index * 131 + 7) % 256));
  return [
    { id: 1, data: every },
    { id: 2, data: Buffer.alloc(0) },
    { id: 3, data: null },
    { id: 4, data: Buffer.alloc(10) },
    { id: 5, data: Buffer.concat([pattern, Buffer.from(every).reverse()]) },
  ];
}

function labelRows(): Array<{ id: number; label: string; parent: number | null }> {
  return Array.from({ length: WITH_SPACE_ROWS }, (_, index) => ({
    id: index + 1,
    label: `label ${TEXTS[index % TEXTS.length]}`,
    parent: index % 3 === 0 ? null : index + 1,
  }));
}

const PRISMA_ROWS = [
  {
    id: 'a1',
    checksum: 'c1',
    migration_name: SEEDED_MIGRATIONS[0],
    started: '2024-01-01 00:00:00',
    finished: '2024-01-01 00:00:01',
    rolled_back: null,
  },
  {
    id: 'b2',
    checksum: 'c2',
    migration_name: '20240115000000_broken',
    started: '2024-01-15 00:00:00',
    finished: null,
    rolled_back: '2024-01-15 00:10:00',
  },
  {
    id: 'c3',
    checksum: 'c3',
    migration_name: SEEDED_MIGRATIONS[1],
    started: '2024-02-01 00:00:00',
    finished: '2024-02-01 00:00:01',
    rolled_back: null,
  },
];

/** Unicode of every kind, NULLs, all 256 byte values, quoted identifiers, a view, Prisma's table. */
export async function seedAwkwardData(kind: DatabaseKind, url: string): Promise<void> {
  if (kind === 'postgresql') return seedPostgres(url);
  if (kind === 'mysql') return seedMysql(url);
  return seedSqlite(sqlitePath(url));
}

export function sqlitePath(url: string): string {
  return decodeURIComponent(url.replace(/^(sqlite|file):(\/\/(?=\/))?/, ''));
}

async function seedPostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`
      CREATE SCHEMA "Extra Schema";
      CREATE TABLE public."Mixed Case" (id integer PRIMARY KEY, "with space" text, note text, amount numeric(12,2), created timestamptz);
      CREATE TABLE public.blobs (id integer PRIMARY KEY, data bytea);
      CREATE TABLE "Extra Schema"."with space" (id integer PRIMARY KEY, label text NOT NULL, parent integer REFERENCES public."Mixed Case"(id));
      CREATE VIEW "Extra Schema".labels AS SELECT id, upper(label) AS label FROM "Extra Schema"."with space";
      CREATE SEQUENCE "Extra Schema".counter START 42;
      CREATE TABLE public._prisma_migrations (
        id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL,
        logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);
    `);
    for (const row of mixedRows()) {
      await client.query('INSERT INTO public."Mixed Case" VALUES ($1, $2, $3, $4, $5)', [
        row.id,
        row.text,
        row.note,
        row.amount,
        row.created,
      ]);
    }
    for (const row of blobs()) await client.query('INSERT INTO public.blobs VALUES ($1, $2)', [row.id, row.data]);
    for (const row of labelRows()) {
      await client.query('INSERT INTO "Extra Schema"."with space" VALUES ($1, $2, $3)', [
        row.id,
        row.label,
        row.parent,
      ]);
    }
    for (const row of PRISMA_ROWS) {
      await client.query(
        'INSERT INTO public._prisma_migrations (id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count) VALUES ($1, $2, $3, $4, $5, $6, 1)',
        [row.id, row.checksum, row.migration_name, row.started, row.finished, row.rolled_back],
      );
    }
  } finally {
    await client.end();
  }
}

async function seedMysql(url: string): Promise<void> {
  const connection = await mysql.createConnection({ uri: url, charset: 'utf8mb4', timezone: 'Z' });
  try {
    for (const statement of [
      'CREATE TABLE `Mixed Case` (id INT PRIMARY KEY, `with space` TEXT, note TEXT, amount DECIMAL(12,2), created DATETIME(3)) CHARACTER SET utf8mb4',
      'CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB)',
      'CREATE TABLE `with space` (id INT PRIMARY KEY, label VARCHAR(300) NOT NULL, parent INT, FOREIGN KEY (parent) REFERENCES `Mixed Case`(id)) CHARACTER SET utf8mb4',
      'CREATE VIEW labels AS SELECT id, UPPER(label) AS label FROM `with space`',
      "CREATE TRIGGER `label trim` BEFORE INSERT ON `with space` FOR EACH ROW SET NEW.label = CONCAT(NEW.label, '')",
      `CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY, checksum VARCHAR(64) NOT NULL, finished_at DATETIME(3) NULL,
        migration_name VARCHAR(255) NOT NULL, logs TEXT NULL, rolled_back_at DATETIME(3) NULL,
        started_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), applied_steps_count INT UNSIGNED NOT NULL DEFAULT 0)`,
    ]) {
      await connection.query(statement);
    }
    await connection.query('INSERT INTO `Mixed Case` VALUES ?', [
      mixedRows().map((row) => [row.id, row.text, row.note, row.amount, row.created]),
    ]);
    await connection.query('INSERT INTO blobs VALUES ?', [blobs().map((row) => [row.id, row.data])]);
    await connection.query('INSERT INTO `with space` VALUES ?', [
      labelRows().map((row) => [row.id, row.label, row.parent]),
    ]);
    await connection.query(
      'INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count) VALUES ?',
      [
        PRISMA_ROWS.map((row) => [
          row.id,
          row.checksum,
          row.migration_name,
          row.started,
          row.finished,
          row.rolled_back,
          1,
        ]),
      ],
    );
  } finally {
    await connection.end();
  }
}

function seedSqlite(file: string): void {
  const db = new DatabaseSync(file);
  try {
    db.exec(`
      PRAGMA journal_mode = WAL;
      CREATE TABLE "Mixed Case" (id INTEGER PRIMARY KEY, "with space" TEXT, note TEXT, amount NUMERIC, created TEXT);
      CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB);
      CREATE TABLE "with space" (id INTEGER PRIMARY KEY, label TEXT NOT NULL, parent INTEGER REFERENCES "Mixed Case"(id));
      CREATE VIEW labels AS SELECT id, upper(label) AS label FROM "with space";
      CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at DATETIME, migration_name TEXT NOT NULL,
        logs TEXT, rolled_back_at DATETIME, started_at DATETIME NOT NULL DEFAULT current_timestamp, applied_steps_count INTEGER NOT NULL DEFAULT 0);
    `);
    db.exec('BEGIN');
    const mixed = db.prepare('INSERT INTO "Mixed Case" VALUES (?, ?, ?, ?, ?)');
    for (const row of mixedRows())
      mixed.run(row.id, row.text, row.note, row.amount, row.created?.toISOString() ?? null);
    const blob = db.prepare('INSERT INTO blobs VALUES (?, ?)');
    for (const row of blobs()) blob.run(row.id, row.data);
    const label = db.prepare('INSERT INTO "with space" VALUES (?, ?, ?)');
    for (const row of labelRows()) label.run(row.id, row.label, row.parent);
    const prisma = db.prepare(
      'INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, rolled_back_at, applied_steps_count) VALUES (?, ?, ?, ?, ?, ?, 1)',
    );
    for (const row of PRISMA_ROWS)
      prisma.run(row.id, row.checksum, row.migration_name, row.started, row.finished, row.rolled_back);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** `<rows>:<md5 of the sorted row texts>` per table, keyed `schema.table` on PostgreSQL, sorted by key. */
export async function tableChecksums(kind: DatabaseKind, url: string): Promise<Record<string, string>> {
  const sums =
    kind === 'postgresql'
      ? await postgresChecksums(url)
      : kind === 'mysql'
        ? await mysqlChecksums(url)
        : sqliteChecksums(sqlitePath(url));
  return Object.fromEntries(Object.entries(sums).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function ident(name: string, quote: '"' | '`'): string {
  return quote + name.replaceAll(quote, quote + quote) + quote;
}

async function postgresChecksums(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ schemaname: string; tablename: string }>(
      "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    );
    const sums: Record<string, string> = {};
    for (const { schemaname, tablename } of tables) {
      const { rows } = await client.query<{ n: number; sum: string }>(
        `SELECT count(*)::int AS n, md5(coalesce(string_agg(faber_row::text, E'\\n' ORDER BY faber_row::text COLLATE "C"), '')) AS sum
         FROM ${ident(schemaname, '"')}.${ident(tablename, '"')} AS faber_row`,
      );
      sums[`${schemaname}.${tablename}`] = `${rows[0]!.n}:${rows[0]!.sum}`;
    }
    return sums;
  } finally {
    await client.end();
  }
}

async function mysqlChecksums(url: string): Promise<Record<string, string>> {
  const connection = await mysql.createConnection({ uri: url });
  try {
    await connection.query('SET SESSION group_concat_max_len = 1073741824');
    const [tables] = await connection.query<mysql.RowDataPacket[]>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    const sums: Record<string, string> = {};
    for (const { name } of tables as Array<{ name: string }>) {
      const [columns] = await connection.query<mysql.RowDataPacket[]>(
        'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position',
        [name],
      );
      // HEX(CONCAT(x)) is the exact bytes of any type; NULL gets its own marker.
      const row = (columns as Array<{ name: string }>)
        .map((column) => `COALESCE(HEX(CONCAT(${ident(column.name, '`')})), 'NULL')`)
        .join(", '|', ");
      const [[result]] = (await connection.query(
        `SELECT COUNT(*) AS n, MD5(COALESCE(GROUP_CONCAT(r ORDER BY r SEPARATOR '\\n'), '')) AS sum
         FROM (SELECT CONCAT(${row}) AS r FROM ${ident(name, '`')}) AS faber_rows`,
      )) as unknown as [[{ n: number; sum: string }]];
      sums[name] = `${result.n}:${result.sum}`;
    }
    return sums;
  } finally {
    await connection.end();
  }
}

function sqliteValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return `x'${Buffer.from(value).toString('hex')}'`;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function sqliteChecksums(file: string): Record<string, string> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const tables = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1",
      )
      .all();
    const sums: Record<string, string> = {};
    for (const { name } of tables as Array<{ name: string }>) {
      const rows = db
        .prepare(`SELECT * FROM ${ident(name, '"')}`)
        .all()
        .map((row) => JSON.stringify(Object.values(row).map(sqliteValue)))
        .sort();
      sums[name] = `${rows.length}:${createHash('md5').update(rows.join('\n')).digest('hex')}`;
    }
    return sums;
  } finally {
    db.close();
  }
}
