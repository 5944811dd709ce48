// A stand-in for `prisma migrate deploy`: applies one migration and records it the way Prisma does.
import { DatabaseSync } from 'node:sqlite';
import { randomUUID } from 'node:crypto';

const url = process.env[process.argv[2]];
if (!url) throw new Error(`${process.argv[2]} is not set`);
const db = new DatabaseSync(url.replace(/^sqlite:/, ''));
const name = '20250301000000_add_order_notes';
const done = db.prepare('SELECT 1 FROM _prisma_migrations WHERE migration_name = ?').get(name);
if (done) {
  console.log(`Migration ${name} already applied`);
} else {
  db.exec('ALTER TABLE orders ADD COLUMN notes TEXT');
  db.prepare(
    "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES (?, 'demo', ?, datetime('now'), datetime('now'), 1)",
  ).run(randomUUID(), name);
  console.log(`Applied migration ${name}`);
}
db.close();
