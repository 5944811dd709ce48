import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createBackup, type BackupResultData } from '../../src/operations/backup.ts';
import { restoreBackup } from '../../src/operations/restore.ts';
import { silentReporter } from '../../src/output/reporter.ts';
import {
  adminQuery,
  adminUrl,
  createPasswordUser,
  databaseUrl,
  freshMysql,
  freshPostgres,
  freshSqlite,
  tracked,
  uniqueName,
  type FreshDatabase,
} from '../support/databases.ts';
import { seedAwkwardData, sqlitePath, tableChecksums, type DatabaseKind } from '../support/fixtures.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { succeeded } from '../support/results.ts';
import { stringMatching } from '../support/matchers.ts';

const track = tracked();

const ok = succeeded;

const FRESH: Record<DatabaseKind, () => Promise<FreshDatabase>> = {
  postgresql: freshPostgres,
  mysql: freshMysql,
  sqlite: freshSqlite,
};

/** Changes the live database after the backup: a row gone, a row changed, a table dropped. */
async function mutate(kind: DatabaseKind, url: string): Promise<void> {
  if (kind === 'sqlite') {
    const db = new DatabaseSync(sqlitePath(url));
    db.exec(
      'DELETE FROM "Mixed Case" WHERE id = 1; UPDATE "Mixed Case" SET note = \'changed\' WHERE id = 2; DROP TABLE blobs;',
    );
    db.close();
    return;
  }
  const database = new URL(url).pathname.slice(1);
  const statements =
    kind === 'postgresql'
      ? [
          'DELETE FROM public."Mixed Case" WHERE id = 1',
          `UPDATE public."Mixed Case" SET note = 'changed' WHERE id = 2`,
          'DROP TABLE public.blobs',
        ]
      : [
          'DELETE FROM `Mixed Case` WHERE id = 1',
          "UPDATE `Mixed Case` SET note = 'changed' WHERE id = 2",
          'DROP TABLE blobs',
        ];
  await adminQuery(kind === 'postgresql' ? 'postgresql' : 'mysql', statements, decodeURIComponent(database));
}

interface Setup {
  db: FreshDatabase;
  workspace: TestWorkspace;
  backup: BackupResultData;
  original: Record<string, string>;
}

async function backedUp(
  kind: DatabaseKind,
  options: {
    format?: 'sql' | 'custom' | 'directory';
    compression?: 'zstd' | 'gzip' | 'none';
    environment?: 'dev' | 'production';
  } = {},
): Promise<Setup> {
  const db = await track(FRESH[kind]());
  await seedAwkwardData(kind, db.url);
  const environment = options.environment ?? 'dev';
  const variable = environment === 'dev' ? 'DEV_DATABASE_URL' : 'PROD_DATABASE_URL';
  const workspace = await makeWorkspace(
    {
      database: { provider: kind, migration_tool: 'prisma' },
      backup: {
        ...(options.format ? { format: options.format } : {}),
        ...(options.compression ? { compression: options.compression } : {}),
      },
    },
    { [variable]: db.url },
  );
  const backup = ok(await createBackup({ environment, yes: true }, workspace.ctx())) as BackupResultData;
  return { db, workspace, backup, original: await tableChecksums(kind, db.url) };
}

const ROUND_TRIPS: Array<[string, DatabaseKind, Parameters<typeof backedUp>[1]]> = [
  ['PostgreSQL plain SQL (zstd)', 'postgresql', { format: 'sql' }],
  ['PostgreSQL custom', 'postgresql', { format: 'custom' }],
  ['PostgreSQL directory (pg_restore -j)', 'postgresql', { format: 'directory' }],
  ['MariaDB (gzip)', 'mysql', { compression: 'gzip' }],
  ['SQLite', 'sqlite', {}],
];

describe('restore: round trips through the operations API', () => {
  it.each(ROUND_TRIPS)(
    '%s: the live database gets back exactly what was backed up, after a safety backup',
    async (_name, kind, options) => {
      const { db, workspace, backup, original } = await backedUp(kind, options);
      await mutate(kind, db.url);
      const changed = await tableChecksums(kind, db.url);
      expect(changed).not.toEqual(original);

      const restored = ok(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()));
      expect(await tableChecksums(kind, db.url)).toEqual(original);
      expect(restored).toMatchObject({
        backup_id: backup.backup_id,
        source_environment: 'dev',
        migrations: { applied_count: 2 },
      });
      expect(restored.tables).toBeGreaterThan(2);

      const safety = await workspace.catalog.find(restored.safety_backup_id ?? '');
      expect(safety).toMatchObject({
        reason: 'pre-restore',
        label: 'pre-restore',
        environment: 'dev',
        status: 'valid',
      });
      expect(restored.undo_command).toBe(`nx run api:restore:dev --from=${restored.safety_backup_id}`);
      expect(workspace.output.join('\n')).toContain('To undo this restore');
      // What the catalog records as checked is what this restore checked, the decode proven during the load.
      const checks = (await workspace.catalog.find(backup.backup_id))?.verification.checks;
      if (options?.format === 'directory') expect(checks?.at(0)).toMatch(/^\d+ files match their checksums$/);
      else
        expect(checks).toEqual([
          'size matches',
          'file checksum (sha256) matches',
          'decoded content checksum matches (checked while loading, before the swap)',
        ]);
    },
  );

  it('the undo command puts back what the restore replaced', async () => {
    const { db, workspace, backup, original } = await backedUp('sqlite');
    await mutate('sqlite', db.url);
    const changed = await tableChecksums('sqlite', db.url);
    const restored = ok(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()));
    expect(await tableChecksums('sqlite', db.url)).toEqual(original);
    ok(await restoreBackup({ environment: 'dev', from: restored.safety_backup_id ?? '' }, workspace.ctx()));
    expect(await tableChecksums('sqlite', db.url)).toEqual(changed);
  });

  it('defaults to the newest verified backup', async () => {
    const { db, workspace, backup, original } = await backedUp('sqlite');
    const newer = ok(await createBackup({ environment: 'dev', label: 'newer' }, workspace.ctx())) as BackupResultData;
    await workspace.catalog.patch(newer.backup_id, (entry) => {
      entry.status = 'verification_failed';
    });
    await mutate('sqlite', db.url);
    const restored = ok(await restoreBackup({ environment: 'dev' }, workspace.ctx()));
    expect(restored.backup_id).toBe(backup.backup_id);
    expect(await tableChecksums('sqlite', db.url)).toEqual(original);
  });

  it('restores into another database named by --targetConnectionStringEnv; an empty target gets no safety backup', async () => {
    const { db, workspace, backup, original } = await backedUp('postgresql', { format: 'custom' });
    const target = await track(freshPostgres());
    const restored = ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'COPY_URL' },
        workspace.ctx({ env: { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, COPY_URL: target.url } }),
      ),
    );
    expect(restored).toMatchObject({ safety_backup_id: null, undo_command: null, database_name: target.name });
    expect(await tableChecksums('postgresql', target.url)).toEqual(original);
    expect((await workspace.catalog.read()).entries).toHaveLength(1);

    // Now the target has data: the safety backup is of the target, not of the environment's database.
    await mutate('postgresql', target.url);
    const again = ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'COPY_URL' },
        workspace.ctx({ env: { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, COPY_URL: target.url } }),
      ),
    );
    expect(await workspace.catalog.find(again.safety_backup_id ?? '')).toMatchObject({
      database_name: target.name,
      reason: 'pre-restore',
    });
    expect(again.undo_command).toBe(
      `nx run api:restore:dev --from=${again.safety_backup_id} --targetConnectionStringEnv=COPY_URL`,
    );
    expect(await tableChecksums('postgresql', target.url)).toEqual(original);
  });

  it('restores into a PostgreSQL database that does not exist yet', async () => {
    const { workspace, backup, original, db } = await backedUp('postgresql', { format: 'custom' });
    const name = `${db.name}_new`;
    const url = new URL(db.url);
    url.pathname = `/${name}`;
    await track(
      Promise.resolve({
        url: url.toString(),
        name,
        drop: async () => void (await adminQuery('postgresql', [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`])),
      }),
    );
    const restored = ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'NEW_URL' },
        workspace.ctx({ env: { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, NEW_URL: url.toString() } }),
      ),
    );
    expect(restored.safety_backup_id).toBeNull();
    expect(await tableChecksums('postgresql', url.toString())).toEqual(original);
  });
});

describe('restore: a failure leaves the target as it was', () => {
  it('a dump that breaks half-way (checksum re-recorded) fails in the scratch database; the target is untouched', async () => {
    const { db, workspace, backup } = await backedUp('postgresql', { format: 'sql', compression: 'none' });
    await mutate('postgresql', db.url);
    const before = await tableChecksums('postgresql', db.url);

    // Cut a piece out of the middle of the first COPY block, then make the catalog agree with the damage.
    const file = path.join(workspace.root, backup.file_path);
    const dump = await readFile(file);
    const copyAt = dump.indexOf('COPY public."Mixed Case"');
    expect(copyAt).toBeGreaterThan(0);
    await writeFile(file, Buffer.concat([dump.subarray(0, copyAt + 300), dump.subarray(copyAt + 5_000)]));
    const damaged = await readFile(file);
    const sha = createHash('sha256').update(damaged).digest('hex');
    await workspace.catalog.patch(backup.backup_id, (entry) => {
      entry.size_bytes = damaged.length;
      entry.checksum = { algorithm: 'sha256', value: sha, content_value: sha };
    });

    const result = await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx());
    expect(result).toMatchObject({ status: 'error', error_code: 'RESTORE_FAILED', result: { target_changed: false } });
    expect(result.status === 'error' && result.error).toContain('the target database was not changed');
    expect(await tableChecksums('postgresql', db.url)).toEqual(before);
    expect(
      await adminQuery('postgresql', [`SELECT datname FROM pg_database WHERE datname LIKE '${db.name}__faber_%'`]),
    ).toEqual([]);
  });

  it.each([
    ['PostgreSQL custom (pg_restore)', 'postgresql', { format: 'custom' }],
    ['MariaDB', 'mysql', {}],
    ['SQLite', 'sqlite', {}],
  ] as Array<[string, DatabaseKind, Parameters<typeof backedUp>[1]]>)(
    '%s: a file whose decoded content is not the recorded dump fails during the load and is never swapped in',
    async (_name, kind, options) => {
      const { db, workspace, backup } = await backedUp(kind, options);
      await mutate(kind, db.url);
      const before = await tableChecksums(kind, db.url);
      // The stored bytes still match their record; only what they decode to does not.
      const other = createHash('sha256').update('another dump').digest('hex');
      await workspace.catalog.patch(backup.backup_id, (entry) => {
        entry.checksum = { ...entry.checksum, content_value: other };
      });

      const result = await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx());
      expect(result).toMatchObject({
        status: 'error',
        error_code: 'VERIFICATION_FAILED',
        result: { target_changed: false },
      });
      expect(result.status === 'error' && result.error).toContain(
        `decoded content checksum mismatch: expected ${other}`,
      );
      expect(await tableChecksums(kind, db.url)).toEqual(before);
      const entry = await workspace.catalog.find(backup.backup_id);
      expect(entry?.status).toBe('verification_failed');
      expect(
        (entry?.verification.checks ?? []).filter((check) =>
          check.startsWith('FAILED: decoded content checksum mismatch'),
        ),
      ).toHaveLength(1);
      if (kind === 'postgresql')
        expect(
          await adminQuery('postgresql', [`SELECT datname FROM pg_database WHERE datname LIKE '${db.name}__faber_%'`]),
        ).toEqual([]);
      if (kind === 'sqlite')
        expect((await readdir(path.dirname(db.name))).filter((name) => name.includes('__faber_restore'))).toEqual([]);
    },
  );

  it('a restored copy that does not match the recorded row counts is never swapped in', async () => {
    const { db, workspace, backup } = await backedUp('sqlite');
    await mutate('sqlite', db.url);
    const before = await tableChecksums('sqlite', db.url);
    await workspace.catalog.patch(backup.backup_id, (entry) => {
      entry.table_row_counts = { ...entry.table_row_counts, 'Mixed Case': 301 };
    });
    const result = await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx());
    expect(result).toMatchObject({
      status: 'error',
      error_code: 'RESTORE_FAILED',
      result: { differences: ['table Mixed Case has 300 rows, 301 were recorded'], target_changed: false },
    });
    expect(await tableChecksums('sqlite', db.url)).toEqual(before);
  });

  it('Ctrl-C during the load cancels: the scratch copy is dropped and the target is untouched', async () => {
    const { db, workspace, backup } = await backedUp('sqlite');
    await mutate('sqlite', db.url);
    const before = await tableChecksums('sqlite', db.url);
    const controller = new AbortController();
    const reporter = {
      ...silentReporter(),
      step: (message: string) => void (message.startsWith('Restoring into') && controller.abort()),
    };
    const result = await restoreBackup(
      { environment: 'dev', from: backup.backup_id },
      workspace.ctx({ reporter, signal: controller.signal }),
    );
    expect(result).toMatchObject({ status: 'error', error_code: 'CANCELLED' });
    expect(await tableChecksums('sqlite', db.url)).toEqual(before);
    expect((await readdir(path.dirname(db.name))).filter((name) => name.includes('__faber_'))).toEqual([]);
  });

  it('a corrupt backup is refused before anything happens: no safety backup, target untouched', async () => {
    const { db, workspace, backup } = await backedUp('sqlite');
    await mutate('sqlite', db.url);
    const before = await tableChecksums('sqlite', db.url);
    const file = path.join(workspace.root, backup.file_path);
    const bytes = await readFile(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    await writeFile(file, bytes);
    expect(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'VERIFICATION_FAILED',
    });
    expect(await tableChecksums('sqlite', db.url)).toEqual(before);
    expect((await workspace.catalog.read()).entries.map((entry) => [entry.backup_id, entry.status])).toEqual([
      [backup.backup_id, 'verification_failed'],
    ]);
  });
});

describe('restore: confirmation in protected environments', () => {
  it('needs --yes without a terminal, the typed database name on one, and never skips the safety backup', async () => {
    const { db, workspace, backup } = await backedUp('sqlite', { environment: 'production' });
    await mutate('sqlite', db.url);
    const before = await tableChecksums('sqlite', db.url);
    const from = backup.backup_id;

    const noTerminal = await restoreBackup({ environment: 'production', from }, workspace.ctx());
    expect(noTerminal).toMatchObject({ status: 'error', error_code: 'CONFIRMATION_REQUIRED' });
    expect(noTerminal.status === 'error' && noTerminal.recovery.suggestions[0]).toContain(
      `nx run api:restore:production --from=${from} --yes`,
    );

    const asked: Array<[string, string | undefined]> = [];
    const wrongName = await restoreBackup(
      { environment: 'production', from },
      workspace.ctx({
        interactive: true,
        confirm: (question, expected) => (asked.push([question, expected]), Promise.resolve(false)),
      }),
    );
    expect(wrongName).toMatchObject({ status: 'error', error_code: 'CANCELLED' });
    expect(asked[0]?.[1]).toBe('app.db');

    expect(
      await restoreBackup({ environment: 'production', from, yes: true, skipSafetyBackup: true }, workspace.ctx()),
    ).toMatchObject({ status: 'error', error_code: 'INVALID_OPTION' });
    expect(await tableChecksums('sqlite', db.url)).toEqual(before);
    expect((await workspace.catalog.read()).entries).toHaveLength(1);

    const typed = await restoreBackup(
      { environment: 'production', from },
      workspace.ctx({ interactive: true, confirm: (_question, expected) => Promise.resolve(expected === 'app.db') }),
    );
    expect(typed).toMatchObject({ status: 'success', result: { safety_backup_id: stringMatching(/-pre-restore$/) } });
  });
});

describe('restore: a backup is only ever a backup of the database it was taken from', () => {
  it('the safety backup of a --targetConnectionStringEnv target is recorded as that database and never restored by default', async () => {
    const { db, workspace, backup, original } = await backedUp('postgresql', { format: 'custom' });
    const other = await track(freshPostgres());
    await seedAwkwardData('postgresql', other.url);
    await mutate('postgresql', other.url);
    const env = { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, OTHER_DB_URL: other.url };

    const intoOther = ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'OTHER_DB_URL', yes: true },
        workspace.ctx({ env }),
      ),
    );
    const safety = await workspace.catalog.find(intoOther.safety_backup_id ?? '');
    expect(safety).toMatchObject({
      database_name: other.name,
      source: { engine: 'postgresql', database: other.name, environment_database: false },
    });
    expect(await workspace.catalog.find(backup.backup_id)).toMatchObject({
      database_name: db.name,
      source: { database: db.name, environment_database: true },
    });

    // The plain restore of the environment takes its own newest backup, not the other database's newer one.
    await mutate('postgresql', db.url);
    const plain = ok(await restoreBackup({ environment: 'dev', yes: true }, workspace.ctx({ env })));
    expect(plain.backup_id).toBe(backup.backup_id);
    expect(await tableChecksums('postgresql', db.url)).toEqual(original);
  });

  it('--from naming another database’s backup works, and the confirmation says whose backup goes where', async () => {
    const { db, workspace, backup } = await backedUp('sqlite');
    const other = await track(freshSqlite());
    await seedAwkwardData('sqlite', other.url);
    await mutate('sqlite', other.url);
    const otherContent = await tableChecksums('sqlite', other.url);
    const env = { PATH: process.env.PATH, DEV_DATABASE_URL: db.url, OTHER_DB_URL: other.url };
    const intoOther = ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, targetConnectionStringEnv: 'OTHER_DB_URL' },
        workspace.ctx({ env }),
      ),
    );

    const asked: string[] = [];
    const confirm = (question: string) => (asked.push(question), Promise.resolve(true));
    ok(
      await restoreBackup(
        { environment: 'dev', from: intoOther.safety_backup_id ?? '' },
        workspace.ctx({ env, interactive: true, confirm }),
      ),
    );
    expect(asked[0]).toContain(`a backup of database file ${other.name}, into database app.db`);
    expect(workspace.output.join('\n')).toContain('not of the dev database');
    expect(await tableChecksums('sqlite', db.url)).toEqual(otherContent);
  });
});

/** Every file under a directory with its bytes, to prove an operation changed nothing. */
async function filesUnder(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files[path.relative(root, file)] = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
  }
  return files;
}

describe('restore: a refused or cancelled confirmation changes no byte', () => {
  it('no terminal without --yes, and "no" at the prompt, leave the catalog, the manifests and the database as they were', async () => {
    const { db, workspace, backup } = await backedUp('sqlite', { environment: 'production' });
    await mutate('sqlite', db.url);
    const database = await tableChecksums('sqlite', db.url);
    const files = await filesUnder(workspace.backupRoot);
    expect(Object.keys(files).some((file) => file.endsWith('.manifest.json'))).toBe(true);

    const noTerminal = await restoreBackup(
      { environment: 'production', from: backup.backup_id },
      workspace.ctx({ now: () => new Date(Date.now() + 60_000) }),
    );
    expect(noTerminal).toMatchObject({ status: 'error', error_code: 'CONFIRMATION_REQUIRED' });
    expect(await filesUnder(workspace.backupRoot)).toEqual(files);

    const declined = await restoreBackup(
      { environment: 'production' },
      workspace.ctx({
        interactive: true,
        confirm: () => Promise.resolve(false),
        now: () => new Date(Date.now() + 120_000),
      }),
    );
    expect(declined).toMatchObject({ status: 'error', error_code: 'CANCELLED' });
    expect(await filesUnder(workspace.backupRoot)).toEqual(files);
    expect(await tableChecksums('sqlite', db.url)).toEqual(database);
  });
});

describe('restore: other sessions on a PostgreSQL target are found before the load', () => {
  it('fails with CONNECTION_FAILED before any safety backup or load; --force goes ahead', async () => {
    const { db, workspace, backup, original } = await backedUp('postgresql', { format: 'custom' });
    await mutate('postgresql', db.url);
    const before = await tableChecksums('postgresql', db.url);
    const session = new pg.Client({ connectionString: db.url, application_name: 'the-app' });
    session.on('error', () => {});
    await session.connect();
    try {
      const blocked = await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx());
      expect(blocked).toMatchObject({ status: 'error', error_code: 'CONNECTION_FAILED' });
      expect(blocked.status === 'error' && blocked.error).toContain('the-app');
      const steps = workspace.output.join('\n');
      expect(steps).not.toContain('Restoring into');
      expect(steps).not.toContain('safety backup');
      expect((await workspace.catalog.read()).entries).toHaveLength(1);
      expect(await tableChecksums('postgresql', db.url)).toEqual(before);

      ok(await restoreBackup({ environment: 'dev', from: backup.backup_id, force: true }, workspace.ctx()));
      expect(await tableChecksums('postgresql', db.url)).toEqual(original);
    } finally {
      await session.end().catch(() => {});
    }
  });
});

/** Everything about a PostgreSQL database that a dump does not carry, in comparable form. */
async function databaseProperties(name: string): Promise<Record<string, unknown>> {
  const [row] = await adminQuery('postgresql', [
    `SELECT pg_get_userbyid(d.datdba) AS owner, d.datacl::text AS acl, d.datconnlimit AS connection_limit, shobj_description(d.oid, 'pg_database') AS comment,
            pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
            (SELECT json_agg(json_build_object('role', pg_get_userbyid(s.setrole), 'config', s.setconfig) ORDER BY s.setrole)
             FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
     FROM pg_database d WHERE d.datname = '${name}'`,
  ]);
  return row ?? {};
}

describe('restore: a PostgreSQL database keeps its database-level properties', () => {
  it('owner (a non-superuser role), ACL, database and per-role settings, comment, connection limit, encoding and locale', async () => {
    const owner = uniqueName('faber_owner');
    const reader = uniqueName('faber_reader');
    await adminQuery('postgresql', [`CREATE ROLE "${owner}" LOGIN`, `CREATE ROLE "${reader}" LOGIN`]);
    const { db, workspace, backup, original } = await backedUp('postgresql', { format: 'custom' });
    try {
      await adminQuery('postgresql', [
        `ALTER DATABASE "${db.name}" OWNER TO "${owner}"`,
        `REVOKE CONNECT, TEMPORARY ON DATABASE "${db.name}" FROM PUBLIC`,
        `GRANT CONNECT ON DATABASE "${db.name}" TO "${reader}"`,
        `ALTER DATABASE "${db.name}" SET work_mem = '12MB'`,
        `ALTER DATABASE "${db.name}" SET search_path = "$user", public, "Other Schema"`,
        `ALTER ROLE "${reader}" IN DATABASE "${db.name}" SET statement_timeout = '5s'`,
        `COMMENT ON DATABASE "${db.name}" IS 'the app''s data'`,
        `ALTER DATABASE "${db.name}" CONNECTION LIMIT 25`,
      ]);
      const before = await databaseProperties(db.name);
      expect(before).toMatchObject({ owner, connection_limit: 25, comment: "the app's data" });
      await mutate('postgresql', db.url);

      ok(await restoreBackup({ environment: 'dev', from: backup.backup_id }, workspace.ctx()));
      expect(await tableChecksums('postgresql', db.url)).toEqual(original);
      expect(await databaseProperties(db.name)).toEqual(before);

      // The owner owns the public schema again (PostgreSQL 15: pg_database_owner) and can create in it.
      const asOwner = new pg.Client({ connectionString: roleUrl(db.url, owner) });
      await asOwner.connect();
      try {
        await asOwner.query('CREATE TABLE public.made_by_owner (id int)');
      } finally {
        await asOwner.end();
      }
      const asReader = new pg.Client({ connectionString: roleUrl(db.url, reader) });
      await asReader.connect();
      try {
        expect((await asReader.query('SHOW statement_timeout')).rows[0]).toEqual({ statement_timeout: '5s' });
      } finally {
        await asReader.end();
      }
    } finally {
      await db.drop();
      await adminQuery('postgresql', [`DROP ROLE IF EXISTS "${owner}"`, `DROP ROLE IF EXISTS "${reader}"`]);
    }
  });
});

describe('restore: database-level properties that cannot be copied stop the restore before the load', () => {
  it('the owner restoring its own database may not set another role’s settings in it: refused, nothing loaded, target unchanged', async () => {
    const owner = uniqueName('faber_owner');
    const reader = uniqueName('faber_reader');
    await adminQuery('postgresql', [`CREATE ROLE "${owner}" LOGIN CREATEDB`, `CREATE ROLE "${reader}" LOGIN`]);
    const db = await track(freshPostgres());
    try {
      await adminQuery('postgresql', [`ALTER DATABASE "${db.name}" OWNER TO "${owner}"`]);
      const asOwner = roleUrl(db.url, owner);
      await seedAwkwardData('postgresql', asOwner);
      const workspace = await makeWorkspace(
        { database: { provider: 'postgresql', migration_tool: 'prisma' }, backup: { format: 'custom' } },
        { DEV_DATABASE_URL: asOwner },
      );
      const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
      await adminQuery('postgresql', [`ALTER ROLE "${reader}" IN DATABASE "${db.name}" SET statement_timeout = '5s'`]);
      await mutate('postgresql', db.url);
      const before = {
        data: await tableChecksums('postgresql', db.url),
        properties: await databaseProperties(db.name),
      };

      const refused = await restoreBackup(
        { environment: 'dev', from: backup.backup_id, skipSafetyBackup: true },
        workspace.ctx(),
      );
      expect(refused).toMatchObject({ status: 'error', result: { target_changed: false } });
      expect(refused.status === 'error' && refused.error).toContain(`ALTER ROLE "${reader}" IN DATABASE`);
      expect(workspace.output.join('\n')).not.toContain('Restoring into');
      expect({
        data: await tableChecksums('postgresql', db.url),
        properties: await databaseProperties(db.name),
      }).toEqual(before);
      expect(
        await adminQuery('postgresql', [`SELECT datname FROM pg_database WHERE datname LIKE '${db.name}__faber_%'`]),
      ).toEqual([]);

      // Without settings of other roles, the owner restores its own database and keeps everything.
      await adminQuery('postgresql', [
        `ALTER ROLE "${reader}" IN DATABASE "${db.name}" RESET ALL`,
        `ALTER DATABASE "${db.name}" SET work_mem = '8MB'`,
      ]);
      const properties = await databaseProperties(db.name);
      ok(await restoreBackup({ environment: 'dev', from: backup.backup_id, skipSafetyBackup: true }, workspace.ctx()));
      expect(await databaseProperties(db.name)).toEqual(properties);
    } finally {
      await db.drop();
      await adminQuery('postgresql', [`DROP ROLE IF EXISTS "${owner}"`, `DROP ROLE IF EXISTS "${reader}"`]);
    }
  });
});

function roleUrl(url: string, role: string): string {
  const parsed = new URL(url);
  parsed.username = role;
  parsed.password = '';
  return parsed.toString();
}

/** Each object of a MariaDB database with its definer, `kind name → user@host`. */
async function definers(database: string): Promise<Record<string, string>> {
  const rows = await adminQuery('mysql', [
    `SELECT CONCAT('view ', table_name) AS object, definer FROM information_schema.views WHERE table_schema = '${database}'
     UNION ALL SELECT CONCAT('trigger ', trigger_name), definer FROM information_schema.triggers WHERE trigger_schema = '${database}'
     UNION ALL SELECT CONCAT(LOWER(routine_type), ' ', routine_name), definer FROM information_schema.routines WHERE routine_schema = '${database}'
     UNION ALL SELECT CONCAT('event ', event_name), definer FROM information_schema.events WHERE event_schema = '${database}'`,
  ]);
  return Object.fromEntries(rows.map((row) => [String(row.object), String(row.definer)]));
}

describe('restore: MariaDB objects defined by another user', () => {
  it('a user without SUPER/SET USER restores views, triggers, procedures, functions and events as their definer, with a warning; root keeps the original definers', async () => {
    const app = await createPasswordUser('mysql');
    await track(Promise.resolve(app));
    await seedAwkwardData('mysql', app.url);
    await adminQuery(
      'mysql',
      [
        'CREATE VIEW root_view AS SELECT id FROM `Mixed Case`',
        "CREATE TRIGGER root_trigger BEFORE INSERT ON `Mixed Case` FOR EACH ROW SET NEW.note = CONCAT('t:', NEW.note)",
        'CREATE PROCEDURE root_procedure() SELECT COUNT(*) FROM `Mixed Case`',
        'CREATE FUNCTION root_function() RETURNS INT DETERMINISTIC RETURN 42',
        'CREATE EVENT root_event ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM `Mixed Case` WHERE id < 0',
      ],
      app.name,
    );
    const original = await definers(app.name);
    const byRoot = Object.keys(original).filter((object) => object.includes(' root_'));
    expect(byRoot.sort()).toEqual([
      'event root_event',
      'function root_function',
      'procedure root_procedure',
      'trigger root_trigger',
      'view root_view',
    ]);
    const rootUrl = databaseUrl(adminUrl('mysql'), app.name);
    const workspace = await makeWorkspace(
      { database: { provider: 'mysql', migration_tool: 'prisma' } },
      { DEV_DATABASE_URL: rootUrl },
    );
    const backup = ok(await createBackup({ environment: 'dev' }, workspace.ctx())) as BackupResultData;
    const data = await tableChecksums('mysql', rootUrl);

    await mutate('mysql', rootUrl);
    ok(
      await restoreBackup(
        { environment: 'dev', from: backup.backup_id, skipSafetyBackup: true },
        workspace.ctx({ env: { PATH: process.env.PATH, DEV_DATABASE_URL: app.url } }),
      ),
    );
    expect(await tableChecksums('mysql', rootUrl)).toEqual(data);
    const rewritten = await definers(app.name);
    for (const object of byRoot) expect(rewritten[object]).toBe(`${app.user}@%`);
    const warning = workspace.output.find((line) => line.startsWith('warn') && line.includes('definer')) ?? '';
    for (const object of byRoot) expect(warning).toContain(`${object} (was ${original[object]})`);

    // A user with SET USER (root) restoring the same backup puts the original definers back.
    ok(await restoreBackup({ environment: 'dev', from: backup.backup_id, skipSafetyBackup: true }, workspace.ctx()));
    expect(await definers(app.name)).toEqual(original);
  });
});
