/**
 * Reference datasets, generated server-side and cached between runs.
 *
 * The rows look like an application's orders table: random UUIDs, timestamps, e-mail addresses,
 * hex hashes (md5 of random values: incompressible beyond their 4 bits per character), money
 * amounts, a status enum and jsonb documents whose keys vary by row. Unlike pgbench's filler
 * columns this compresses about as well as real data does (zstd -1: ~35 % of the dump).
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { mysqlCli, psql, type Services } from './services.ts';

export const PG_TABLE_SQL = `
CREATE TABLE orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  public_id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz,
  customer_email text NOT NULL,
  reference text NOT NULL,
  note text,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  attributes jsonb NOT NULL
);
CREATE TABLE _prisma_migrations (
  id text PRIMARY KEY, checksum text NOT NULL, finished_at timestamptz, migration_name text NOT NULL,
  logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0
);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
VALUES ('m1', 'bench', now(), '20250101000000_init', 1);`;

function pgInsertSql(rows: number): string {
  return `
INSERT INTO orders (public_id, created_at, updated_at, customer_email, reference, note, amount, status, attributes)
SELECT gen_random_uuid(),
       ts,
       CASE WHEN g % 3 = 0 THEN NULL ELSE ts + random() * interval '30 days' END,
       'user' || (g % 50000) || '@' || (ARRAY['example.com', 'mail.test', 'corp.example', 'shop.test'])[1 + g % 4],
       md5(random()::text),
       CASE g % 4
         WHEN 0 THEN NULL
         WHEN 1 THEN 'ref ' || md5(random()::text)
         WHEN 2 THEN md5(random()::text) || ' / ' || md5(random()::text)
         ELSE 'customer asked for ' || md5(random()::text) || ', ' || md5(random()::text) || ' and ' || md5(random()::text)
       END,
       round((random() * 10000)::numeric, 2),
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'refunded'])[1 + g % 5],
       CASE g % 4
         WHEN 0 THEN jsonb_build_object('channel', 'web', 'items', 1 + g % 7, 'coupon', left(md5(random()::text), 8))
         WHEN 1 THEN jsonb_build_object('channel', 'app', 'device', (ARRAY['ios', 'android'])[1 + g % 2], 'version', '2.' || (g % 40))
         WHEN 2 THEN jsonb_build_object('channel', 'store', 'store_id', g % 900, 'cashier', md5(random()::text))
         ELSE jsonb_build_object('channel', 'phone', 'agent', 'a' || (g % 300), 'tags', jsonb_build_array('gift', g % 10), 'score', round(random()::numeric, 3))
       END
FROM generate_series(1, ${rows}) AS g,
     LATERAL (SELECT timestamptz '2020-01-01' + g * interval '37 seconds' + random() * interval '1 hour' AS ts) AS t;
CREATE INDEX orders_created_at ON orders (created_at);
CREATE INDEX orders_customer_email ON orders (customer_email);
VACUUM ANALYZE orders;`;
}

export function pgDatabaseName(rows: number): string {
  return `faber_bench_${rows}`;
}

async function pgDatabaseExists(services: Services, name: string): Promise<boolean> {
  const out = await psql(services, 'postgres', `SELECT 1 FROM pg_database WHERE datname = '${name}'`);
  return out.trim() === '1';
}

/**
 * The cached reference database for `rows`, built if missing. It is built under a temporary
 * name and renamed when complete, so an interrupted build is never mistaken for a cached one.
 */
export async function ensurePgDataset(
  services: Services,
  rows: number,
  fresh: boolean,
  log: (line: string) => void,
): Promise<string> {
  const name = pgDatabaseName(rows);
  if (fresh) await psql(services, 'postgres', `DROP DATABASE IF EXISTS ${name}`);
  if (await pgDatabaseExists(services, name)) return name;
  const building = `${name}_building`;
  log(`creating PostgreSQL dataset ${name} (${rows.toLocaleString('en')} rows; cached for later runs)`);
  const started = Date.now();
  await psql(services, 'postgres', `DROP DATABASE IF EXISTS ${building}`);
  await psql(services, 'postgres', `CREATE DATABASE ${building}`);
  await psql(services, building, PG_TABLE_SQL + pgInsertSql(rows));
  await psql(services, 'postgres', `ALTER DATABASE ${building} RENAME TO ${name}`);
  log(`  done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return name;
}

export async function pgDatabaseSize(services: Services, name: string): Promise<number> {
  return Number((await psql(services, 'postgres', `SELECT pg_database_size('${name}')`)).trim());
}

function mysqlInsertSql(rows: number): string {
  return `
CREATE TABLE orders (
  id bigint AUTO_INCREMENT PRIMARY KEY,
  public_id char(36) NOT NULL,
  created_at datetime(6) NOT NULL,
  updated_at datetime(6) NULL,
  customer_email varchar(120) NOT NULL,
  reference char(32) NOT NULL,
  note text NULL,
  amount decimal(12,2) NOT NULL,
  status varchar(16) NOT NULL,
  attributes json NOT NULL,
  KEY orders_created_at (created_at),
  KEY orders_customer_email (customer_email)
) ENGINE=InnoDB;
INSERT INTO orders (public_id, created_at, updated_at, customer_email, reference, note, amount, status, attributes)
SELECT uuid(),
       ts,
       IF(g % 3 = 0, NULL, ts + INTERVAL FLOOR(RAND() * 2592000) SECOND),
       CONCAT('user', g % 50000, '@', ELT(1 + g % 4, 'example.com', 'mail.test', 'corp.example', 'shop.test')),
       MD5(RAND()),
       CASE g % 4
         WHEN 0 THEN NULL
         WHEN 1 THEN CONCAT('ref ', MD5(RAND()))
         WHEN 2 THEN CONCAT(MD5(RAND()), ' / ', MD5(RAND()))
         ELSE CONCAT('customer asked for ', MD5(RAND()), ', ', MD5(RAND()), ' and ', MD5(RAND()))
       END,
       ROUND(RAND() * 10000, 2),
       ELT(1 + g % 5, 'pending', 'paid', 'shipped', 'delivered', 'refunded'),
       CASE g % 4
         WHEN 0 THEN JSON_OBJECT('channel', 'web', 'items', 1 + g % 7, 'coupon', LEFT(MD5(RAND()), 8))
         WHEN 1 THEN JSON_OBJECT('channel', 'app', 'device', ELT(1 + g % 2, 'ios', 'android'), 'version', CONCAT('2.', g % 40))
         WHEN 2 THEN JSON_OBJECT('channel', 'store', 'store_id', g % 900, 'cashier', MD5(RAND()))
         ELSE JSON_OBJECT('channel', 'phone', 'agent', CONCAT('a', g % 300), 'tags', JSON_ARRAY('gift', g % 10), 'score', ROUND(RAND(), 3))
       END
FROM (SELECT seq AS g, TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (seq * 37 + FLOOR(RAND() * 3600)) SECOND AS ts FROM seq_1_to_${rows}) AS s;
CREATE TABLE _prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at datetime NULL,
  migration_name varchar(255) NOT NULL, logs text NULL, rolled_back_at datetime NULL, started_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  applied_steps_count int NOT NULL DEFAULT 0);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('m1', 'bench', NOW(), '20250101000000_init', 1);`;
}

/** MariaDB cannot rename a database, so completeness is marked by a table written last. */
export async function ensureMysqlDataset(
  services: Services,
  rows: number,
  fresh: boolean,
  log: (line: string) => void,
): Promise<string> {
  const name = `faber_bench_${rows}`;
  if (fresh) await mysqlCli(services, `DROP DATABASE IF EXISTS ${name}`);
  const complete = await mysqlCli(
    services,
    `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '${name}' AND table_name = '_bench_complete'`,
  );
  if (complete.trim() === '1') return name;
  log(`creating MariaDB dataset ${name} (${rows.toLocaleString('en')} rows; cached for later runs)`);
  const started = Date.now();
  await mysqlCli(services, `DROP DATABASE IF EXISTS ${name}; CREATE DATABASE ${name}`);
  await mysqlCli(services, mysqlInsertSql(rows), name);
  await mysqlCli(services, 'CREATE TABLE _bench_complete (id int)', name);
  log(`  done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return name;
}

/** A SQLite file with the same shape of data, in the cache directory. */
export function ensureSqliteDataset(
  cacheDir: string,
  rows: number,
  fresh: boolean,
  log: (line: string) => void,
): string {
  const file = path.join(cacheDir, `faber_bench_${rows}.sqlite`);
  if (fresh) rmSync(file, { force: true });
  if (existsSync(file)) return file;
  log(`creating SQLite dataset ${path.basename(file)} (${rows.toLocaleString('en')} rows; cached for later runs)`);
  const building = `${file}.building`;
  rmSync(building, { force: true });
  const db = new DatabaseSync(building);
  db.exec(`
    PRAGMA journal_mode = WAL;
    CREATE TABLE orders (id INTEGER PRIMARY KEY, public_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT,
      customer_email TEXT NOT NULL, reference TEXT NOT NULL, note TEXT, amount REAL NOT NULL, status TEXT NOT NULL, attributes TEXT NOT NULL);
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${rows})
    INSERT INTO orders (public_id, created_at, updated_at, customer_email, reference, note, amount, status, attributes)
    SELECT lower(hex(randomblob(16))), datetime(1577836800 + n * 37, 'unixepoch'),
           CASE WHEN n % 3 = 0 THEN NULL ELSE datetime(1577836800 + n * 37 + abs(random() % 2592000), 'unixepoch') END,
           'user' || (n % 50000) || '@example.com', lower(hex(randomblob(16))),
           CASE n % 4 WHEN 0 THEN NULL ELSE 'note ' || lower(hex(randomblob(16 * (n % 4)))) END,
           round(abs(random() % 1000000) / 100.0, 2),
           CASE n % 5 WHEN 0 THEN 'pending' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' WHEN 3 THEN 'delivered' ELSE 'refunded' END,
           json_object('channel', CASE n % 3 WHEN 0 THEN 'web' WHEN 1 THEN 'app' ELSE 'store' END, 'k' || (n % 17), lower(hex(randomblob(4))))
    FROM g;
    CREATE INDEX orders_created_at ON orders (created_at);
    CREATE INDEX orders_customer_email ON orders (customer_email);
    CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at TEXT, migration_name TEXT NOT NULL,
      logs TEXT, rolled_back_at TEXT, started_at TEXT NOT NULL DEFAULT (datetime('now')), applied_steps_count INTEGER NOT NULL DEFAULT 0);
    INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
      VALUES ('m1', 'bench', datetime('now'), '20250101000000_init', 1);
    PRAGMA wal_checkpoint(TRUNCATE);
    PRAGMA journal_mode = DELETE;
  `);
  db.close();
  renameSync(building, file);
  return file;
}
