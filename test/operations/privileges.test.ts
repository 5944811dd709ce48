import { describe, expect, it } from 'vitest';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { verifyBackup } from '../../src/operations/verify.ts';
import type { OperationResult } from '../../src/output/result.ts';
import {
  adminQuery,
  adminUrl,
  databaseUrl,
  freshMysql,
  freshPostgres,
  tracked,
  uniqueName,
  type ServerKind,
} from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { succeeded } from '../support/results.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';

/**
 * A user that logged in but lacks a privilege gets PERMISSION_DENIED (never AUTHENTICATION_FAILED)
 * naming the privilege and the exact GRANT; running that GRANT is all it takes to succeed.
 */

const track = tracked();

/** The same URL, logging in as `user` (no password: the test servers trust local connections). */
function asUser(url: string, user: string): string {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = '';
  return parsed.toString();
}

function expectDenied(result: OperationResult<unknown>, privilege: string, grant: string): string {
  expect(result).toMatchObject({ status: 'error', error_code: 'PERMISSION_DENIED', result: { grant } });
  if (result.status !== 'error') throw new Error('unreachable');
  expect(result.error).toContain(privilege);
  expect(result.recovery.suggestions[0]).toContain(grant);
  return grant;
}

/** Runs a suggested GRANT (one or more statements) as the administrator. */
async function runGrant(kind: ServerKind, grant: string): Promise<void> {
  await adminQuery(
    kind,
    grant
      .split(';')
      .map((statement) => statement.trim())
      .filter(Boolean),
  );
}

function workspaceFor(kind: ServerKind, url: string): Promise<TestWorkspace> {
  return makeWorkspace(
    { database: { provider: kind === 'postgresql' ? 'postgresql' : 'mysql', migration_tool: 'prisma' } },
    { DEV_DATABASE_URL: url },
  );
}

describe('privileges: PostgreSQL', () => {
  it('backup without SELECT on a table: PERMISSION_DENIED naming SELECT and GRANT pg_read_all_data', async () => {
    const role = uniqueName('faber_r');
    const db = await track(freshPostgres());
    await adminQuery('postgresql', [`CREATE ROLE "${role}" LOGIN`]);
    try {
      await seedAwkwardData('postgresql', db.url);
      const workspace = await workspaceFor('postgresql', asUser(db.url, role));
      const denied = await createBackup({ environment: 'dev' }, workspace.ctx());
      await runGrant(
        'postgresql',
        expectDenied(denied, 'SELECT on every table', `GRANT pg_read_all_data TO "${role}";`),
      );
      succeeded(await createBackup({ environment: 'dev' }, workspace.ctx()));
    } finally {
      await db.drop();
      await adminQuery('postgresql', [`DROP ROLE IF EXISTS "${role}"`]);
    }
  });

  it('restore and verify --deep without CREATEDB: PERMISSION_DENIED naming CREATEDB and the ALTER ROLE that grants it', async () => {
    const role = uniqueName('faber_r');
    const name = uniqueName();
    await adminQuery('postgresql', [`CREATE ROLE "${role}" LOGIN`, `CREATE DATABASE "${name}" OWNER "${role}"`]);
    try {
      const url = asUser(databaseUrl(adminUrl('postgresql'), name), role);
      await seedAwkwardData('postgresql', url);
      const workspace = await workspaceFor('postgresql', url);
      const backup = succeeded(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      const grant = `ALTER ROLE "${role}" CREATEDB;`;
      expectDenied(
        await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()),
        'CREATEDB',
        grant,
      );
      expectDenied(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()), 'CREATEDB', grant);
      expect(await workspace.catalog.find(backup.backup_id)).toMatchObject({ status: 'valid' });

      await runGrant('postgresql', grant);
      expect(succeeded(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()))).toMatchObject({
        failed_count: 0,
      });
      succeeded(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()));
    } finally {
      await adminQuery('postgresql', [
        `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
        `DROP ROLE IF EXISTS "${role}"`,
      ]);
    }
  });
});

describe('privileges: MariaDB', () => {
  it('backup without rights on the database: PERMISSION_DENIED (not AUTHENTICATION_FAILED) with the exact GRANT', async () => {
    const user = uniqueName('faber_u');
    const db = await track(freshMysql());
    await adminQuery('mysql', [`CREATE USER '${user}'@'%'`]);
    try {
      await seedAwkwardData('mysql', db.url);
      const workspace = await workspaceFor('mysql', asUser(db.url, user));
      const pattern = db.name.replaceAll('_', '\\_');
      const grant = `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON \`${pattern}\`.* TO '${user}'@'%'; GRANT SELECT ON mysql.proc TO '${user}'@'%';`;
      await runGrant(
        'mysql',
        expectDenied(await createBackup({ environment: 'dev' }, workspace.ctx()), 'SELECT, SHOW VIEW', grant),
      );
      succeeded(await createBackup({ environment: 'dev' }, workspace.ctx()));
    } finally {
      await adminQuery('mysql', [`DROP USER IF EXISTS '${user}'@'%'`]);
    }
  });

  it('restore and verify --deep without rights on the scratch databases: PERMISSION_DENIED with the GRANT on their name pattern', async () => {
    const user = uniqueName('faber_u');
    const db = await track(freshMysql());
    await adminQuery('mysql', [
      `CREATE USER '${user}'@'%'`,
      `GRANT ALL ON \`${db.name.replaceAll('_', '\\_')}\`.* TO '${user}'@'%'`,
    ]);
    try {
      const url = asUser(db.url, user);
      await seedAwkwardData('mysql', url);
      const workspace = await workspaceFor('mysql', url);
      const backup = succeeded(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      const grant = `GRANT ALL ON \`${db.name.replaceAll('_', '\\_')}\\_\\_faber\\_%\`.* TO '${user}'@'%';`;
      expectDenied(
        await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()),
        'CREATE and DROP',
        grant,
      );
      expectDenied(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()), 'CREATE and DROP', grant);

      await runGrant('mysql', grant);
      expect(succeeded(await verifyBackup({ environment: 'dev', deep: true }, workspace.ctx()))).toMatchObject({
        failed_count: 0,
      });
      succeeded(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()));
    } finally {
      await adminQuery('mysql', [`DROP USER IF EXISTS '${user}'@'%'`]);
    }
  });
});
