import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MigrationState } from '../../src/catalog/schema.ts';
import { pendingMigrations } from '../../src/migrations/pending.ts';
import { stringContaining } from '../support/matchers.ts';

// The folder side of "pending": each tool's folder laid out as the tool writes it, against the
// names the tool records in its table (the table side is read from real databases in
// test/operations/pre-migration.test.ts).

let project: string;

async function layout(files: Record<string, string>): Promise<string> {
  project = await mkdtemp(path.join(tmpdir(), 'faber-pending-'));
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(project, file)), { recursive: true });
    await writeFile(path.join(project, file), content);
  }
  return project;
}

afterEach(async () => {
  await rm(project, { recursive: true, force: true });
});

function state(tool: string, applied: string[]): MigrationState {
  return {
    tool,
    table: 't',
    applied_count: applied.length,
    last_migration: applied.at(-1) ?? null,
    migrations_list: applied,
  };
}

describe('pending migrations per tool', () => {
  it('prisma: migration folders not in the table', async () => {
    const dir = await layout({
      'prisma/migrations/20240101_init/migration.sql': 'x',
      'prisma/migrations/20240201_posts/migration.sql': 'y',
      'prisma/migrations/migration_lock.toml': 'z',
    });
    expect(await pendingMigrations(state('prisma', ['20240101_init']), dir, undefined)).toEqual({
      known: true,
      directory: path.join(dir, 'prisma/migrations'),
      pending: ['20240201_posts'],
    });
    expect(await pendingMigrations(state('prisma', ['20240101_init', '20240201_posts']), dir, undefined)).toMatchObject(
      { known: true, pending: [] },
    );
  });

  it('knex: migration files by file name (with extension), in a configured directory', async () => {
    const dir = await layout({
      'db/migrations/20240101_users.js': '',
      'db/migrations/20240102_posts.ts': '',
      'db/migrations/20240102_posts.d.ts': '',
      'db/migrations/README.md': '',
    });
    expect(await pendingMigrations(state('knex', ['20240101_users.js']), dir, 'db/migrations')).toMatchObject({
      known: true,
      pending: ['20240102_posts.ts'],
    });
  });

  it('drizzle: journal tags whose SQL hash is not recorded', async () => {
    const first = 'CREATE TABLE a (id int);';
    const dir = await layout({
      'drizzle/meta/_journal.json': JSON.stringify({
        version: '7',
        dialect: 'postgresql',
        entries: [
          { idx: 0, when: 1, tag: '0000_first', breakpoints: true },
          { idx: 1, when: 2, tag: '0001_second', breakpoints: true },
        ],
      }),
      'drizzle/0000_first.sql': first,
      'drizzle/0001_second.sql': 'CREATE TABLE b (id int);',
    });
    const hash = createHash('sha256').update(first).digest('hex');
    expect(await pendingMigrations(state('drizzle', [hash]), dir, undefined)).toMatchObject({
      known: true,
      pending: ['0001_second'],
    });
  });

  it('typeorm: the name property when the file sets one, else the class name', async () => {
    const dir = await layout({
      'src/migrations/1700000000000-Init.ts':
        "export class Init1700000000000 implements MigrationInterface {\n    name = 'Init1700000000000'\n}",
      'src/migrations/1700000500000-AddEmail.ts':
        'export class AddEmail1700000500000 implements MigrationInterface {\n  async up() {}\n}',
    });
    expect(await pendingMigrations(state('typeorm', ['Init1700000000000']), dir, undefined)).toMatchObject({
      known: true,
      pending: ['AddEmail1700000500000'],
    });
  });

  it('flyway: versioned scripts by version order; repeatable scripts make it unknowable', async () => {
    const dir = await layout({ 'sql/V1__init.sql': '', 'sql/V10__later.sql': '', 'sql/V2__add.sql': '' });
    expect(await pendingMigrations(state('flyway', ['V1__init.sql']), dir, undefined)).toMatchObject({
      known: true,
      pending: ['V2__add.sql', 'V10__later.sql'],
    });
    await writeFile(path.join(dir, 'sql/R__views.sql'), '');
    expect(await pendingMigrations(state('flyway', ['V1__init.sql']), dir, undefined)).toMatchObject({
      known: false,
      reason: stringContaining('R__views.sql'),
    });
  });

  it('cannot tell without a tool or without a folder', async () => {
    const dir = await layout({ 'other/x.sql': '' });
    expect(await pendingMigrations(state('none', []), dir, undefined)).toMatchObject({
      known: false,
      reason: stringContaining('migration_tool'),
    });
    expect(await pendingMigrations(state('knex', []), dir, undefined)).toMatchObject({
      known: false,
      reason: stringContaining('migrations.directory'),
    });
    expect(await pendingMigrations(state('prisma', []), dir, 'nowhere')).toMatchObject({
      known: false,
      reason: stringContaining('nowhere'),
    });
  });
});
