import os from 'node:os';
import type pg from 'pg';
import type { StoredFormat } from '../catalog/formats.ts';
import type { ConnectionInfo } from '../config/connection.ts';
import { FaberError } from '../output/errors.ts';
import { throwIfAborted } from './failures.ts';
import type {
  DatabaseHandler,
  DatabaseSnapshot,
  DatabaseTarget,
  DumpRequest,
  DumpSession,
  MigrationLookup,
  RestoreRequest,
  ServerInfo,
} from './handler.ts';
import type { HandlerOptions } from './index.ts';
import { POSTGRESQL_ENGINE } from './postgresql-engine.ts';
import { openBlockChannel } from '../pipeline/channel.ts';
import { readMigrationState, type SqlReader } from './migrations.ts';
import type { MigrationState } from '../catalog/schema.ts';
import { randomTag, scratchName, SCRATCH_MARKER, siblingName, timestampTag, urlWithDatabase } from './names.ts';
import {
  connectPostgres,
  postgresMajor,
  postgresReader,
  postgresRowCounts,
  postgresToolEnv,
  postgresToolVersion,
  postgresVersionNumber,
  quotePostgresIdentifier as quoteIdent,
  quotePostgresLiteral as quoteLiteral,
  secretsOf,
} from './postgresql-support.ts';
import {
  assertSameLocale,
  propertyStatements,
  readDatabaseProperties,
  type DatabaseProperties,
} from './postgresql-properties.ts';
import { namePrivilege, type MissingPrivilege } from './privileges.ts';
import type { SecretFile } from './secret-file.ts';
import { dumpSession, requireTool, runTool, toolVersion, type ClientTool } from './tools.ts';
import { asText } from '../util/text.ts';

/**
 * PostgreSQL: `pg` for queries, pg_dump/pg_restore/psql for dumps and restores.
 *
 * Consistency: startDump opens a REPEATABLE READ transaction, exports its snapshot, reads row
 * counts and migration state in it, and hands the snapshot to `pg_dump --snapshot`, so the
 * recorded state is exactly the dumped state. The transaction stays open until pg_dump exits.
 *
 * Owners: restores keep object owners (pg_restore without --no-owner, as psql does with plain
 * dumps). Restoring as the application's own role works; restoring as another role must be able
 * to SET ROLE to the owners. Dropping owners would silently hand every table to whoever ran the
 * restore, and the application could no longer migrate its own schema.
 */

/** PostgreSQL identifiers are at most NAMEDATALEN - 1 = 63 bytes. */
const MAX_NAME_BYTES = 63;
const DEFAULT_JOBS = 2;
const SWAP_ATTEMPTS = 5;

const USER_RELATIONS = `FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`;

interface Session {
  pid: number;
  datname: string;
  usename: string | null;
  application_name: string | null;
}

export class PostgresHandler implements DatabaseHandler {
  readonly provider = 'postgresql' as const;
  readonly engine = POSTGRESQL_ENGINE;
  readonly live: DatabaseTarget;
  readonly #connection: ConnectionInfo;
  readonly #options: HandlerOptions;
  readonly #secrets: string[];
  #serverVersionNumber: number | undefined;

  constructor(connection: ConnectionInfo, options: HandlerOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#secrets = secretsOf(connection);
    this.live = this.target(connection.database);
  }

  extension(format: StoredFormat): string {
    if (format === 'sql') return 'sql';
    if (format === 'custom') return 'dump';
    if (format === 'directory') return '';
    throw unsupportedFormat(format);
  }

  backupMethod(format: StoredFormat): string {
    this.extension(format);
    return 'pg_dump';
  }

  async preflight(): Promise<ServerInfo> {
    const pgDump = requireTool('pg_dump', this.#options.env);
    // The tool's --version and the server's answer at the same time; a tool problem is reported first.
    const [version, rows] = await Promise.allSettled([
      toolVersion(pgDump, this.#options.env),
      this.#withReader(this.live, (reader) =>
        reader.query(`SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS number,
                           pg_database_size(current_database()) AS size`),
      ).catch((error: unknown) => {
        throw namePrivilege(error, this.#backupPrivilege());
      }),
    ]);
    if (version.status === 'rejected') throw version.reason;
    if (rows.status === 'rejected') throw rows.reason;
    const clientVersion = postgresToolVersion(version.value);
    const [server] = rows.value;
    const serverVersion = asText(server?.version).split(' ')[0] ?? '';
    this.#serverVersionNumber = Number(server?.number);
    assertClientNotOlder(clientVersion, this.#serverVersionNumber, serverVersion);
    return { clientTool: 'pg_dump', clientVersion, serverVersion, databaseSizeBytes: Number(server?.size ?? 0) };
  }

  async startDump(request: DumpRequest): Promise<DumpSession> {
    throwIfAborted(request.signal, 'The backup');
    const pgDump = requireTool('pg_dump', this.#options.env);
    const formatArguments = dumpFormatArguments(request);
    const client = await this.#connect(this.live);
    let passfile: SecretFile | undefined;
    // The snapshot must outlive pg_dump (its workers import it): the transaction ends only here.
    const release = async () => {
      await client.query('COMMIT').catch(() => {});
      await client.end().catch(() => {});
      await passfile?.remove();
    };
    try {
      const reader = postgresReader(client, this.#connection, this.live.display);
      const snapshotId = await exportSnapshot(reader);
      throwIfAborted(request.signal, 'The backup');
      const toolEnv = await postgresToolEnv(
        this.#options.env,
        this.#connection,
        this.live.name,
        this.#options.tempDirectory,
      );
      passfile = toolEnv.passfile;
      const run = runTool(pgDump, ['--no-password', `--snapshot=${snapshotId}`, ...formatArguments], {
        env: toolEnv.env,
        signal: request.signal,
        secrets: this.#secrets,
        failureCode: 'BACKUP_FAILED',
        stdout: request.format === 'directory' ? 'ignore' : ((await openBlockChannel()) ?? 'pipe'),
      });
      // Counted in the exported snapshot while pg_dump streams it.
      const explain = (error: unknown) => namePrivilege(error, this.#backupPrivilege());
      const snapshot = readSnapshot(reader, request.migrations).catch((error: unknown) => {
        throw explain(error);
      });
      return dumpSession(run, snapshot, release, explain);
    } catch (error) {
      await release();
      throw namePrivilege(error, this.#backupPrivilege());
    }
  }

  async restore(target: DatabaseTarget, request: RestoreRequest): Promise<void> {
    throwIfAborted(request.signal, 'The restore');
    const { tool, args, input } = restoreCommand(target, request, this.#options.env);
    const { env, passfile } = await postgresToolEnv(
      this.#options.env,
      this.#connection,
      target.name,
      this.#options.tempDirectory,
    );
    try {
      const run = runTool(tool, args, {
        env,
        signal: request.signal,
        secrets: this.#secrets,
        failureCode: 'RESTORE_FAILED',
        stdout: 'ignore',
        ...(input ? { input } : {}),
      });
      await run.done;
    } catch (error) {
      throw namePrivilege(error, this.#ownerRolePrivilege(error));
    } finally {
      await passfile?.remove();
    }
  }

  async inspect(target: DatabaseTarget, migrations: MigrationLookup): Promise<DatabaseSnapshot> {
    return this.#withReader(target, async (reader) => {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const snapshot = await readSnapshot(reader, migrations);
      await reader.query('COMMIT');
      return snapshot;
    });
  }

  async migrationState(target: DatabaseTarget, migrations: MigrationLookup): Promise<MigrationState> {
    return this.#withReader(target, (reader) => readMigrationState(reader, migrations));
  }

  async isEmpty(target: DatabaseTarget): Promise<boolean> {
    if (!(await this.#databaseExists(target.name))) return true;
    const [row] = await this.#withReader(target, (reader) => reader.query(`SELECT count(*) AS n ${USER_RELATIONS}`));
    return Number(row?.n) === 0;
  }

  target(name: string): DatabaseTarget {
    return { name, display: urlWithDatabase(this.#connection.redacted, name) };
  }

  scratchTarget(purpose: 'verify' | 'restore'): DatabaseTarget {
    return this.target(scratchName(this.live.name, purpose, MAX_NAME_BYTES));
  }

  async createDatabase(target: DatabaseTarget): Promise<void> {
    await this.#withMaintenance([target.name], async (reader) => {
      const options = await creationOptions(reader, this.live.name);
      await reader.query(`CREATE DATABASE ${quoteIdent(target.name)} TEMPLATE template0${options}`);
    }).catch((error: unknown) => {
      const action = SCRATCH_MARKER.test(target.name)
        ? 'create the scratch database of a restore or restore drill'
        : `create the database ${target.name}`;
      throw namePrivilege(error, {
        action,
        privilege: 'the CREATEDB attribute',
        grant: `ALTER ROLE ${quoteIdent(this.#role())} CREATEDB;`,
      });
    });
  }

  async dropDatabase(target: DatabaseTarget): Promise<void> {
    await this.#withMaintenance([target.name], async (reader) => {
      await reader.query(
        `DROP DATABASE IF EXISTS ${quoteIdent(target.name)}${await this.#forceClause(reader, target.name)}`,
      );
    });
  }

  /**
   * Both renames run in one transaction, so the live name always points at a complete database.
   * The old one is dropped afterwards.
   */
  async replace(live: DatabaseTarget, restored: DatabaseTarget, options: { force: boolean }): Promise<void> {
    const oldName = siblingName(live.name, `__faber_old_${timestampTag()}_${randomTag().slice(0, 4)}`, MAX_NAME_BYTES);
    await this.#withMaintenance([live.name, restored.name], async (reader) => {
      // A restore into a database that does not exist yet: nothing to swap out.
      if ((await reader.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [live.name])).length === 0) {
        await this.#clearSessions(reader, [restored.name], options.force, live);
        await reader.query(`ALTER DATABASE ${quoteIdent(restored.name)} RENAME TO ${quoteIdent(live.name)}`);
        return;
      }
      const properties = await readDatabaseProperties(reader, live.name);
      for (let attempt = 1; ; attempt += 1) {
        await this.#clearSessions(reader, [live.name, restored.name], options.force, live);
        try {
          // The copy takes the original's owner, privileges and settings in the transaction that swaps it in.
          if (properties) await applyProperties(reader, properties, restored.name);
          else await reader.query('BEGIN');
          await reader.query(`ALTER DATABASE ${quoteIdent(live.name)} RENAME TO ${quoteIdent(oldName)}`);
          await reader.query(`ALTER DATABASE ${quoteIdent(restored.name)} RENAME TO ${quoteIdent(live.name)}`);
          await reader.query('COMMIT');
          break;
        } catch (caught) {
          await reader.query('ROLLBACK').catch(() => {});
          const error = properties ? namePrivilege(caught, renamePrivilege(properties.owner, this.#role())) : caught;
          // A session that connected between terminating the others and renaming: try again.
          const inUse = error instanceof FaberError && error.result.driver_code === '55006';
          if (!(options.force && inUse && attempt < SWAP_ATTEMPTS)) throw error;
        }
      }
      // The swap is done; a leftover copy only costs disk space and its name says what it is.
      await reader
        .query(`DROP DATABASE IF EXISTS ${quoteIdent(oldName)}${await this.#forceClause(reader, oldName)}`)
        .catch(() => {});
    });
  }

  /** Rehearses replace()'s property statements on the empty copy in a transaction that is rolled back. */
  async assertCanReplace(live: DatabaseTarget, restored: DatabaseTarget): Promise<void> {
    await this.#withMaintenance([live.name, restored.name], async (reader) => {
      const original = await readDatabaseProperties(reader, live.name);
      const copy = await readDatabaseProperties(reader, restored.name);
      if (!original || !copy) return;
      assertSameLocale(original, copy, { original: live.display, copy: restored.name });
      try {
        await applyProperties(reader, original, restored.name);
      } finally {
        await reader.query('ROLLBACK').catch(() => {});
      }
    });
  }

  async assertNotInUse(live: DatabaseTarget, options: { force: boolean }): Promise<void> {
    if (options.force) return;
    // From another database: a connection of ours to `live` would be one of the sessions.
    await this.#withMaintenance([live.name], async (reader) => {
      const sessions = await otherSessions(reader, [live.name]);
      if (sessions.length > 0) throw sessionsInTheWay(sessions, live);
    });
  }

  async close(): Promise<void> {
    // Connections are opened per operation and closed by it; nothing is pooled.
  }

  /** The role the tools log in as: the URL's user, else libpq's default. */
  #role(): string {
    return this.#connection.user ?? this.#options.env.PGUSER ?? os.userInfo().username;
  }

  #backupPrivilege(): MissingPrivilege {
    const role = quoteIdent(this.#role());
    // pg_read_all_data (PostgreSQL 14+) covers every table, sequence and schema, now and later.
    const grant =
      (this.#serverVersionNumber ?? 140000) >= 140000
        ? `GRANT pg_read_all_data TO ${role};`
        : `GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role};`;
    return {
      action: 'back up the database',
      privilege: 'SELECT on every table and sequence and USAGE on their schemas',
      grant,
    };
  }

  /** A dump sets each object's owner: the restoring role must be able to act as those roles. */
  #ownerRolePrivilege(error: unknown): MissingPrivilege {
    const owner = /must be (?:a )?member of role "([^"]+)"/i.exec(error instanceof Error ? error.message : '')?.[1];
    const role = quoteIdent(this.#role());
    return owner
      ? {
          action: 'restore objects owned by another role',
          privilege: `membership in the role ${owner}`,
          grant: `GRANT ${quoteIdent(owner)} TO ${role};`,
        }
      : {
          action: 'restore the backup',
          privilege: 'the privileges the message names (restore as the database owner or a superuser)',
          grant: `ALTER DATABASE ${quoteIdent(this.live.name)} OWNER TO ${role};`,
        };
  }

  async #connect(target: DatabaseTarget): Promise<pg.Client> {
    return connectPostgres(this.#connection, target.name, target.display);
  }

  async #withReader<T>(target: DatabaseTarget, work: (reader: SqlReader) => Promise<T>): Promise<T> {
    const client = await this.#connect(target);
    try {
      return await work(postgresReader(client, this.#connection, target.display));
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * Runs `work` on a connection to a database other than `avoid` (CREATE/DROP/RENAME DATABASE
   * cannot act on the database they are connected to): the live one, else `postgres`, else `template1`.
   */
  async #withMaintenance<T>(avoid: readonly string[], work: (reader: SqlReader) => Promise<T>): Promise<T> {
    const candidates = [this.live.name, 'postgres', 'template1'].filter((name) => !avoid.includes(name));
    let lastError: FaberError | undefined;
    for (const name of candidates) {
      let client: pg.Client;
      try {
        client = await this.#connect(this.target(name));
      } catch (error) {
        if (!(error instanceof FaberError && error.result.driver_code === '3D000')) throw error;
        lastError = error;
        continue;
      }
      try {
        return await work(postgresReader(client, this.#connection, this.target(name).display, 'RESTORE_FAILED'));
      } finally {
        await client.end().catch(() => {});
      }
    }
    throw lastError ?? new FaberError('CONNECTION_FAILED', `No database to connect to on ${this.live.display}`);
  }

  async #databaseExists(name: string): Promise<boolean> {
    const rows = await this.#withMaintenance([], (reader) =>
      reader.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]),
    );
    return rows.length > 0;
  }

  async #forceClause(reader: SqlReader, name: string): Promise<string> {
    if (!SCRATCH_MARKER.test(name)) return '';
    if (this.#serverVersionNumber === undefined) {
      const [row] = await reader.query(`SELECT current_setting('server_version_num') AS number`);
      this.#serverVersionNumber = Number(row?.number);
    }
    return this.#serverVersionNumber >= 130000 ? ' WITH (FORCE)' : '';
  }

  async #clearSessions(reader: SqlReader, databases: string[], force: boolean, live: DatabaseTarget): Promise<void> {
    const sessions = await otherSessions(reader, databases);
    if (sessions.length === 0) return;
    if (!force) throw sessionsInTheWay(sessions, live);
    for (const session of sessions) {
      await reader.query('SELECT pg_terminate_backend($1)', [session.pid]);
    }
  }
}

/** Opens a transaction and gives `target` the properties; the caller commits or rolls back. */
async function applyProperties(reader: SqlReader, properties: DatabaseProperties, target: string): Promise<void> {
  await reader.query('BEGIN');
  for (const statement of propertyStatements(properties, target)) {
    try {
      await reader.query(statement);
    } catch (error) {
      throw propertiesFailure(error, statement, target);
    }
  }
}

function propertiesFailure(error: unknown, statement: string, target: string): FaberError {
  const cause = error instanceof FaberError ? error : undefined;
  const reason = error instanceof Error ? error.message : String(error);
  return new FaberError(
    cause?.code === 'PERMISSION_DENIED' ? 'PERMISSION_DENIED' : 'RESTORE_FAILED',
    `The restored copy could not be given the owner, privileges and settings of the database it replaces (${statement.replace(quoteIdent(target), '<copy>')}): ${reason}; the target is unchanged`,
    {
      result: { ...(cause?.result ?? {}), target_changed: false, statement },
      suggestions: [
        'Run the restore as a superuser, or as the database owner with the right to set each of its settings (ALTER ROLE … IN DATABASE needs CREATEROLE on that role)',
        ...(cause?.suggestions ?? []),
      ],
      cause: error,
    },
  );
}

async function otherSessions(reader: SqlReader, databases: readonly string[]): Promise<Session[]> {
  return (await reader.query(
    `SELECT pid, datname, usename, application_name FROM pg_catalog.pg_stat_activity
     WHERE datname = ANY($1) AND pid <> pg_backend_pid()`,
    [databases],
  )) as unknown as Session[];
}

/** Renaming a database takes its owner (or a member of the owning role) with CREATEDB. */
function renamePrivilege(owner: string, role: string): MissingPrivilege {
  return {
    action: 'swap the restored copy in (rename databases)',
    privilege: `membership in the owner role ${owner} and the CREATEDB attribute`,
    grant: `GRANT ${quoteIdent(owner)} TO ${quoteIdent(role)}; ALTER ROLE ${quoteIdent(role)} CREATEDB;`,
  };
}

function unsupportedFormat(format: string): FaberError {
  return new FaberError('UNSUPPORTED', `PostgreSQL backups use the sql, custom or directory format, not ${format}`, {
    suggestions: ['Set backup.format to "sql", "custom" or "directory"'],
  });
}

async function exportSnapshot(reader: SqlReader): Promise<string> {
  await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  // The transaction idles while pg_dump works; server-side timeouts must not end it.
  await reader.query('SET LOCAL idle_in_transaction_session_timeout = 0');
  await reader.query('SET LOCAL statement_timeout = 0');
  const [row] = await reader.query('SELECT pg_catalog.pg_export_snapshot() AS id');
  return String(row?.id);
}

async function readSnapshot(reader: SqlReader, migrations: MigrationLookup): Promise<DatabaseSnapshot> {
  return { tableRowCounts: await postgresRowCounts(reader), migrations: await readMigrationState(reader, migrations) };
}

function dumpFormatArguments(request: DumpRequest): string[] {
  switch (request.format) {
    case 'sql':
      return ['--format=plain'];
    case 'custom':
      // Uncompressed: the backup pipeline compresses (zstd/gzip) and checksums the stream.
      return ['--format=custom', '--compress=0'];
    case 'directory':
      if (!request.directory) {
        throw new FaberError('INVALID_OPTION', 'A directory-format dump needs the directory to write');
      }
      // pg_dump writes (and compresses) the files itself; an existing empty directory is accepted.
      return [
        '--format=directory',
        `--jobs=${request.parallelJobs ?? DEFAULT_JOBS}`,
        `--compress=${request.compression === 'none' ? 0 : 1}`,
        `--file=${request.directory}`,
      ];
    default:
      throw unsupportedFormat(request.format);
  }
}

/** A libpq connection string naming only the database: the rest comes from the environment. */
function dbnameConninfo(name: string): string {
  return `dbname='${name.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function restoreCommand(
  target: DatabaseTarget,
  request: RestoreRequest,
  env: NodeJS.ProcessEnv,
): { tool: ClientTool; args: string[]; input: RestoreRequest['stream'] } {
  const needStream = () => {
    if (!request.stream)
      throw new FaberError('INVALID_OPTION', `Restoring a ${request.format} backup needs its bytes as a stream`);
    return request.stream;
  };
  switch (request.format) {
    case 'sql':
      return {
        tool: requireTool('psql', env),
        args: ['--no-psqlrc', '--quiet', '--no-password', '--set=ON_ERROR_STOP=1', '--single-transaction', '--file=-'],
        input: needStream(),
      };
    case 'custom':
      return {
        tool: requireTool('pg_restore', env),
        args: ['--exit-on-error', '--no-password', `--dbname=${dbnameConninfo(target.name)}`],
        input: needStream(),
      };
    case 'directory':
      if (!request.directory)
        throw new FaberError('INVALID_OPTION', 'Restoring a directory-format backup needs its directory');
      return {
        tool: requireTool('pg_restore', env),
        args: [
          '--exit-on-error',
          '--no-password',
          `--jobs=${request.parallelJobs ?? DEFAULT_JOBS}`,
          `--dbname=${dbnameConninfo(target.name)}`,
          request.directory,
        ],
        input: undefined,
      };
    default:
      throw unsupportedFormat(request.format);
  }
}

function assertClientNotOlder(clientVersion: string, serverNumber: number, serverVersion: string): void {
  const clientNumber = postgresVersionNumber(clientVersion);
  if (clientNumber === undefined || !Number.isFinite(serverNumber)) return;
  const [clientMajor, serverMajor] = [postgresMajor(clientNumber), postgresMajor(serverNumber)];
  if (clientMajor >= serverMajor) return;
  throw new FaberError(
    'TOOL_VERSION_MISMATCH',
    `pg_dump ${clientVersion} is older than the PostgreSQL ${serverVersion} server; pg_dump cannot dump a server of a newer major version (${serverMajor})`,
    {
      result: { client_version: clientVersion, server_version: serverVersion },
      suggestions: [
        `Install the PostgreSQL ${serverMajor} client tools: apt-get install postgresql-client-${serverMajor} (PostgreSQL apt repository, apt.postgresql.org) or brew install libpq`,
        `Put the directory holding pg_dump ${serverMajor} (or newer) first on PATH`,
      ],
    },
  );
}

/** CREATE DATABASE options that give the copy the live database's encoding and locale. */
async function creationOptions(reader: SqlReader, liveName: string): Promise<string> {
  const [row] = await reader.query(
    'SELECT to_jsonb(d) AS d, pg_catalog.pg_encoding_to_char(d.encoding) AS encoding FROM pg_catalog.pg_database d WHERE datname = $1',
    [liveName],
  );
  if (!row) return '';
  const database = row.d as Record<string, string | null>;
  let options = ` ENCODING ${quoteLiteral(String(row.encoding))}`;
  if (database.datcollate) options += ` LC_COLLATE ${quoteLiteral(database.datcollate)}`;
  if (database.datctype) options += ` LC_CTYPE ${quoteLiteral(database.datctype)}`;
  // PostgreSQL 15 named the provider's locale daticulocale, 17 renamed it datlocale.
  const providerLocale = database.datlocale ?? database.daticulocale;
  if (database.datlocprovider === 'i' && providerLocale) {
    options += ` LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(providerLocale)}`;
  } else if (database.datlocprovider === 'b' && providerLocale) {
    options += ` LOCALE_PROVIDER builtin BUILTIN_LOCALE ${quoteLiteral(providerLocale)}`;
  }
  return options;
}

function sessionsInTheWay(sessions: readonly Session[], live: DatabaseTarget): FaberError {
  const users = [...new Set(sessions.map((session) => session.usename).filter(Boolean))].join(', ');
  const applications = [...new Set(sessions.map((session) => session.application_name).filter(Boolean))].join(', ');
  const who = [users && `users: ${users}`, applications && `applications: ${applications}`].filter(Boolean).join('; ');
  return new FaberError(
    'CONNECTION_FAILED',
    `${sessions.length} other session(s) are connected to ${live.display}${who ? ` (${who})` : ''}; the database cannot be replaced while in use`,
    {
      result: { sessions: sessions.length },
      suggestions: [
        'Stop the application (or close its connections) and run the restore again',
        'Or pass --force to terminate those sessions',
      ],
    },
  );
}
