import pg from 'pg';
import { adminQuery, type FreshDatabase } from '../../support/databases.ts';

/**
 * Fixtures shared by the e2e files: a Prisma-style project whose `migrate` target is a plain
 * `nx:run-commands` script (psql, or node:sqlite for SQLite) that applies the pending migration
 * folders and records each in `_prisma_migrations`, as `prisma migrate deploy` would.
 */

/** Every run of a migrate script appends its run name here (before touching the database), so a test can tell whether migrate ran at all. */
export const MIGRATE_RUNS_LOG = 'migrate-runs.log';

export const POSTGRES_MIGRATE_SCRIPT = `#!/bin/sh
# usage: sh tools/migrate-postgres.sh <migrations folder> <run name> <database url>
set -eu
migrations="$1"; run_name="$2"; url="$3"
echo "$run_name" >> ${MIGRATE_RUNS_LOG}
for folder in "$migrations"/*/; do
  name=$(basename "$folder")
  applied=$(psql "$url" -XAtq -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM _prisma_migrations WHERE migration_name = '$name'")
  [ "$applied" = 0 ] || continue
  psql "$url" -Xq -v ON_ERROR_STOP=1 --single-transaction -f "$folder/migration.sql" \\
    -c "INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) VALUES (md5(random()::text), 'e2e', '$name', now(), 1)"
  echo "applied $name"
done
`;

export const SQLITE_MIGRATE_SCRIPT = `// usage: node tools/migrate-sqlite.mjs <migrations folder> <run name> <sqlite: url>
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
const [migrations, runName, url] = process.argv.slice(2);
appendFileSync('${MIGRATE_RUNS_LOG}', runName + '\\n');
const db = new DatabaseSync(url.replace(/^(sqlite|file):/, ''));
const applied = db.prepare('SELECT count(*) AS n FROM _prisma_migrations WHERE migration_name = ?');
for (const name of readdirSync(migrations).sort()) {
  if (applied.get(name).n > 0) continue;
  db.exec('BEGIN');
  db.exec(readFileSync(migrations + '/' + name + '/migration.sql', 'utf-8'));
  db.prepare("INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) VALUES (?, 'e2e', ?, datetime('now'), 1)").run(name, name);
  db.exec('COMMIT');
  console.log('applied ' + name);
}
db.close();
`;

export const PRISMA_MIGRATIONS_TABLE_POSTGRES = `CREATE TABLE _prisma_migrations (
  id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz, migration_name varchar(255) NOT NULL,
  logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0)`;

export const PRISMA_MIGRATIONS_TABLE_SQLITE = `CREATE TABLE _prisma_migrations (
  id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at TEXT, migration_name TEXT NOT NULL,
  logs TEXT, rolled_back_at TEXT, started_at TEXT NOT NULL DEFAULT (datetime('now')), applied_steps_count INTEGER NOT NULL DEFAULT 0)`;

export const INIT_MIGRATION = '20250101000000_init';
export const INIT_MIGRATION_SQL = `CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);\n`;
export const ORDERS_MIGRATION = '20250201000000_add_orders';
export const ORDERS_MIGRATION_SQL = `CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), total NUMERIC(10, 2) NOT NULL);\n`;

export const USER_COUNT = 40;

/**
 * A PostgreSQL database as if the init migration had been deployed: users and the migrations
 * table with one row, created over the database's own URL (so a password user owns them).
 */
export async function seedPostgres(database: FreshDatabase): Promise<void> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query(PRISMA_MIGRATIONS_TABLE_POSTGRES);
    await client.query(INIT_MIGRATION_SQL);
    await client.query(
      `INSERT INTO users (id, email, name) SELECT i, 'user' || i || '@example.test', 'User ' || i || ' — ünïcødé' FROM generate_series(1, ${USER_COUNT}) AS i`,
    );
    await client.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count) VALUES ('init', 'e2e', '${INIT_MIGRATION}', now(), 1)`,
    );
  } finally {
    await client.end();
  }
}

/** The migration names a PostgreSQL database has recorded, in order. */
export async function appliedMigrations(database: FreshDatabase): Promise<string[]> {
  const rows = await adminQuery(
    'postgresql',
    ['SELECT migration_name FROM _prisma_migrations ORDER BY migration_name'],
    database.name,
  );
  return rows.map((row) => String(row['migration_name']));
}

export interface MigrateTargetInput {
  /** Configuration name → the environment variable holding that configuration's URL. */
  urlVariables: Record<string, string>;
  /** The script and how to run it: `sh tools/migrate-postgres.sh` or `node tools/migrate-sqlite.mjs`. */
  runner: string;
  defaultConfiguration?: string;
}

/**
 * The project's own migrate target, before the configuration generator wires it. Its inputs are
 * the migration folders: under Nx 24's task-level `nx affected`, that is what makes migrate
 * affected by a new migration and by nothing else.
 */
export function migrateTarget(input: MigrateTargetInput): Record<string, unknown> {
  const configurations = Object.fromEntries(
    Object.entries(input.urlVariables).map(([name, variable]) => [
      name,
      { command: `${input.runner} {projectRoot}/prisma/migrations {projectName}:${name} "$${variable}"` },
    ]),
  );
  return {
    executor: 'nx:run-commands',
    cache: false,
    inputs: ['{projectRoot}/prisma/migrations/**/*'],
    options: {},
    configurations,
    ...(input.defaultConfiguration ? { defaultConfiguration: input.defaultConfiguration } : {}),
  };
}

/** The lines migrate scripts wrote to the runs log (`api:production`, ...). */
export function migrateRuns(log: string | undefined): string[] {
  return (log ?? '').split('\n').filter((line) => line !== '');
}
