import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { adminQuery, freshMysql, freshPostgres, freshSqlite, type FreshDatabase } from '../support/databases.ts';
import { MIXED_CASE_ROWS, seedAwkwardData, sqlitePath, tableChecksums } from '../support/fixtures.ts';

// The round-trip tests are only as good as the checksums they compare: a one-byte change must show.

const created: FreshDatabase[] = [];
afterAll(async () => {
  await Promise.all(created.map((db) => db.drop()));
});

describe('tableChecksums', () => {
  it('PostgreSQL: covers both schemas and notices one changed byte in a bytea', async () => {
    const db = await freshPostgres();
    created.push(db);
    await seedAwkwardData('postgresql', db.url);
    const before = await tableChecksums('postgresql', db.url);
    expect(Object.keys(before)).toEqual([
      'Extra Schema.with space',
      'public.Mixed Case',
      'public._prisma_migrations',
      'public.blobs',
    ]);
    expect(before['public.Mixed Case']).toMatch(new RegExp(`^${MIXED_CASE_ROWS}:[0-9a-f]{32}$`));
    await adminQuery('postgresql', ['UPDATE public.blobs SET data = set_byte(data, 255, 0) WHERE id = 1'], db.name);
    const after = await tableChecksums('postgresql', db.url);
    expect(after['public.blobs']).not.toBe(before['public.blobs']);
    expect(after['public.Mixed Case']).toBe(before['public.Mixed Case']);
  });

  it('MySQL: notices a changed combining character and a NULL that became empty', async () => {
    const db = await freshMysql();
    created.push(db);
    await seedAwkwardData('mysql', db.url);
    const before = await tableChecksums('mysql', db.url);
    expect(Object.keys(before)).toEqual(['Mixed Case', '_prisma_migrations', 'blobs', 'with space']);
    await adminQuery('mysql', ["UPDATE `Mixed Case` SET note = '' WHERE note IS NULL LIMIT 1"], db.name);
    expect((await tableChecksums('mysql', db.url))['Mixed Case']).not.toBe(before['Mixed Case']);
  });

  it('SQLite: notices a blob that lost its last byte', async () => {
    const db = await freshSqlite();
    created.push(db);
    await seedAwkwardData('sqlite', db.url);
    const before = await tableChecksums('sqlite', db.url);
    const connection = new DatabaseSync(sqlitePath(db.url));
    connection.exec('UPDATE blobs SET data = substr(data, 1, length(data) - 1) WHERE id = 1');
    connection.close();
    expect((await tableChecksums('sqlite', db.url)).blobs).not.toBe(before.blobs);
  });
});
