/**
 * `npm run demo`: backs up the embedded SQLite demo workspace (examples/sqlite-demo) with a real
 * `nx run demo-app:backup:production`. No database server and no client tool needed.
 * Extra arguments go to nx, e.g. `npm run demo -- --label=first-try` or `npm run demo -- --json`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

const repo = process.cwd();
const demo = path.join(repo, 'examples', 'sqlite-demo');

function ensureBuilt(): void {
  if (existsSync(path.join(repo, 'dist', 'executors', 'backup', 'executor.js'))) return;
  const build = spawnSync('npm', ['run', 'build'], { cwd: repo, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}

/** The demo workspace resolves @faber-db/nx to this repository, as an installed package would. */
function linkPlugin(): void {
  const link = path.join(demo, 'node_modules', '@faber-db', 'nx');
  mkdirSync(path.dirname(link), { recursive: true });
  if (existsSync(link) || lstatSync(link, { throwIfNoEntry: false })) rmSync(link, { recursive: true, force: true });
  symlinkSync(path.relative(path.dirname(link), repo), link, 'dir');
}

function seed(file: string, orders: number): void {
  if (existsSync(file)) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL, placed_at TEXT);
    CREATE TABLE _prisma_migrations (id TEXT PRIMARY KEY, checksum TEXT NOT NULL, finished_at TEXT, migration_name TEXT NOT NULL,
      logs TEXT, rolled_back_at TEXT, started_at TEXT NOT NULL DEFAULT (datetime('now')), applied_steps_count INTEGER NOT NULL DEFAULT 0);
    INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count)
      VALUES ('m1', 'demo', datetime('now'), '20250101000000_init', 1), ('m2', 'demo', datetime('now'), '20250201000000_add_orders', 1);
  `);
  const customer = db.prepare('INSERT INTO customers (name, email) VALUES (?, ?)');
  const order = db.prepare('INSERT INTO orders (customer_id, total, placed_at) VALUES (?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= 100; i++) customer.run(`Customer ${i} — ünïcødé ✓`, `c${i}@example.test`);
  for (let i = 1; i <= orders; i++)
    order.run((i % 100) + 1, Math.round(i * 137.31) / 100, new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString());
  db.exec('COMMIT');
  db.close();
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('NX_')) env[key] = value;
  return { ...env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', NX_SKIP_NX_CACHE: 'true' };
}

ensureBuilt();
linkPlugin();
seed(path.join(demo, 'data', 'dev.db'), 1_000);
seed(path.join(demo, 'data', 'production.db'), 20_000);
const nx = path.join(repo, 'node_modules', '.bin', 'nx');
const args = process.argv.slice(2);
const run = spawnSync(nx, ['run', 'demo-app:backup:production', ...args], {
  cwd: demo,
  stdio: 'inherit',
  env: cleanEnv(),
});
process.exit(run.status ?? 1);
