import type { Readable } from 'node:stream';
import type { StoredFormat } from '../catalog/formats.ts';
import type { ConnectionInfo } from '../config/connection.ts';
import { FaberError, type ErrorCode } from '../output/errors.ts';
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
import { MYSQL_ENGINE } from './mysql-engine.ts';
import { openBlockChannel } from '../pipeline/channel.ts';
import { quoteIdentifier, readMigrationState, type SqlReader } from './migrations.ts';
import type { MigrationState } from '../catalog/schema.ts';
import {
  connectMysql,
  isMariaDb,
  mysqlRowCounts,
  mysqlToolCredentials,
  mysqlToolVersion,
  secretsOf,
  type MysqlSession,
} from './mysql-support.ts';
import { scratchName, SCRATCH_MARKER, urlWithDatabase } from './names.ts';
import { assertRoutinesReadable } from './mysql-routines.ts';
import { DefinerRewriter, describeRewrites, type RewrittenDefiner } from './mysql-definers.ts';
import { explainDenial, mysqlAccount, mysqlGrantPattern, type MissingPrivilege } from './privileges.ts';
import { dumpSession, findTool, requireTool, runTool, toolVersion, type ClientTool, type ToolRun } from './tools.ts';
import { asText } from '../util/text.ts';

/**
 * MySQL and MariaDB: mysql2 for queries; mariadb-dump/mysqldump and the mariadb/mysql client
 * (MariaDB's names preferred) for dumps and restores.
 *
 * Credentials: every tool run gets `--defaults-extra-file=<0600 file in the temp directory>` as
 * its first argument, holding user, password, host/port or socket; the file is removed when the
 * run ends, whether it succeeded or not. (As with any MySQL client, a ~/.my.cnf of the user
 * running the backup is read after that file and wins where it sets the same options.)
 *
 * Consistency: `--single-transaction` makes the dump one consistent snapshot, but MySQL cannot
 * hand a snapshot to another session. Row counts and migration state are read just before the
 * dump, in their own `START TRANSACTION WITH CONSISTENT SNAPSHOT`; a write committed between
 * the two can be in the dump but not in the counts.
 *
 * Replace: MySQL has neither transactional DDL nor RENAME DATABASE. Two ways were weighed:
 * (a) one atomic `RENAME TABLE` moving every table from the scratch schema into the live one;
 * (b) loading the live database only after the same content has loaded into a scratch one.
 * (a) is atomic for base tables only: views, stored routines and events do not move with
 * RENAME TABLE, tables with triggers cannot be moved to another schema at all, and views
 * would keep pointing at the scratch schema. It is unsound for any database using those, so we
 * do (b): the restored scratch database proves the dump loads; replace() then empties the live
 * database (DROP + CREATE with the same character set and collation; grants survive, MySQL keeps
 * them by name), copies the scratch database into it with dump | client, and drops the scratch
 * copy. It is not atomic: if the copy fails midway the live database is incomplete, the scratch
 * copy is kept and the error says where it is; the pre-restore safety backup is the undo.
 */

/** MySQL database names are at most 64 characters (bytes here, to be safe with multibyte names). */
const MAX_NAME_BYTES = 64;
const SAFE_CHARSET = /^[A-Za-z0-9_]+$/;

interface Session {
  id: number;
  user: string | null;
  host: string | null;
}

export class MysqlHandler implements DatabaseHandler {
  readonly provider = 'mysql' as const;
  readonly engine = MYSQL_ENGINE;
  readonly live: DatabaseTarget;
  readonly #connection: ConnectionInfo;
  readonly #options: HandlerOptions;
  readonly #secrets: string[];
  readonly #versions = new Map<string, Promise<string>>();

  constructor(connection: ConnectionInfo, options: HandlerOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#secrets = secretsOf(connection);
    this.live = this.target(connection.database);
  }

  extension(format: StoredFormat): string {
    if (format !== 'sql') throw unsupportedFormat(format);
    return 'sql';
  }

  backupMethod(format: StoredFormat): string {
    this.extension(format);
    return findTool('mysql-dump', this.#options.env)?.name ?? 'mysqldump';
  }

  async preflight(): Promise<ServerInfo> {
    const dumpTool = requireTool('mysql-dump', this.#options.env);
    // The tool's --version and the server's answer at the same time; a tool problem is reported first.
    const [version, rows] = await Promise.allSettled([
      this.#toolVersion(dumpTool),
      this.#withSession(this.live.name, 'BACKUP_FAILED', (reader) =>
        reader.query(
          `SELECT VERSION() AS version,
                (SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()) AS size`,
        ),
      ).catch(async (error: unknown) => {
        throw await explainDenial(error, () => this.#backupPrivilege());
      }),
    ]);
    if (version.status === 'rejected') throw version.reason;
    if (rows.status === 'rejected') throw rows.reason;
    const clientVersion = mysqlToolVersion(version.value);
    const [row] = rows.value;
    return {
      clientTool: dumpTool.name,
      clientVersion,
      serverVersion: asText(row?.version),
      databaseSizeBytes: Number(row?.size ?? 0),
    };
  }

  async startDump(request: DumpRequest): Promise<DumpSession> {
    throwIfAborted(request.signal, 'The backup');
    this.extension(request.format);
    const dumpTool = requireTool('mysql-dump', this.#options.env);
    // The row counts (their own consistent snapshot, as before) are read while the dump runs:
    // connecting and counting no longer come before the first byte. A failed check stops the dump.
    const checked = this.#withSession(this.live.name, 'BACKUP_FAILED', async (reader) => {
      await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const state = await readSnapshot(reader, this.live.name, request.migrations);
      await reader.query('COMMIT');
      await assertRoutinesReadable(reader, this.live.name);
      const [row] = await reader.query('SELECT VERSION() AS version');
      return { snapshot: state, serverVersion: asText(row?.version) };
    }).catch(async (error: unknown) => {
      throw await explainDenial(error, () => this.#backupPrivilege());
    });
    checked.catch(() => {});
    const flavourArguments = await this.#dumpFlavourArguments(dumpTool, async () => (await checked).serverVersion);
    throwIfAborted(request.signal, 'The backup');
    const credentials = await mysqlToolCredentials(this.#options.env, this.#connection, this.#options.tempDirectory);
    const run = runTool(
      dumpTool,
      [credentials.firstArgument, ...DUMP_ARGUMENTS, ...flavourArguments, '--', this.live.name],
      {
        env: credentials.env,
        signal: request.signal,
        secrets: this.#secrets,
        failureCode: 'BACKUP_FAILED',
        stdout: (await openBlockChannel()) ?? 'pipe',
      },
    );
    return dumpSession(
      run,
      checked.then(({ snapshot }) => snapshot),
      () => credentials.file.remove(),
      (error) => explainDenial(error, () => this.#backupPrivilege()),
    );
  }

  async restore(target: DatabaseTarget, request: RestoreRequest): Promise<void> {
    throwIfAborted(request.signal, 'The restore');
    this.extension(request.format);
    if (!request.stream) throw new FaberError('INVALID_OPTION', 'Restoring a MySQL backup needs its bytes as a stream');
    const client = requireTool('mysql-client', this.#options.env);
    const { self, privileged } = await this.#definerRights();
    const rewritten: RewrittenDefiner[] = [];
    const rewriter = privileged ? undefined : new DefinerRewriter(self, (object) => rewritten.push(object));
    const source = request.stream;
    if (rewriter) source.on('error', (error) => rewriter.destroy(error));
    const credentials = await mysqlToolCredentials(this.#options.env, this.#connection, this.#options.tempDirectory);
    try {
      await this.#load(client, credentials, target, rewriter ? source.pipe(rewriter) : source, request.signal).done;
    } finally {
      rewriter?.destroy();
      await credentials.file.remove();
    }
    if (rewritten.length > 0) request.onWarning?.(describeRewrites(rewritten, self));
  }

  async inspect(target: DatabaseTarget, migrations: MigrationLookup): Promise<DatabaseSnapshot> {
    return this.#withSession(target.name, 'VERIFICATION_FAILED', async (reader) => {
      await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const snapshot = await readSnapshot(reader, target.name, migrations);
      await reader.query('COMMIT');
      return snapshot;
    });
  }

  async migrationState(target: DatabaseTarget, migrations: MigrationLookup): Promise<MigrationState> {
    return this.#withSession(target.name, 'BACKUP_FAILED', (reader) => readMigrationState(reader, migrations));
  }

  async isEmpty(target: DatabaseTarget): Promise<boolean> {
    const [row] = await this.#withSession(undefined, 'RESTORE_FAILED', (reader) =>
      reader.query('SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?', [target.name]),
    );
    return Number(row?.n) === 0;
  }

  target(name: string): DatabaseTarget {
    return { name, display: urlWithDatabase(this.#connection.redacted, name) };
  }

  scratchTarget(purpose: 'verify' | 'restore'): DatabaseTarget {
    return this.target(scratchName(this.live.name, purpose, MAX_NAME_BYTES));
  }

  async createDatabase(target: DatabaseTarget): Promise<void> {
    await this.#withSession(undefined, 'RESTORE_FAILED', async (reader) => {
      await reader.query(
        `CREATE DATABASE ${quoteIdentifier('mysql', target.name)}${await characterSetOf(reader, this.live.name)}`,
      );
    }).catch(async (error: unknown) => {
      throw await explainDenial(error, async () => {
        // One grant covers every scratch database of this one (restores and drills): `app\_prod\_\_faber\_%`.
        const scratch = SCRATCH_MARKER.test(target.name);
        const pattern = scratch
          ? `${mysqlGrantPattern(this.live.name)}\\_\\_faber\\_%`
          : mysqlGrantPattern(target.name);
        return {
          action: scratch
            ? 'create the scratch database of a restore or restore drill'
            : `create the database ${target.name}`,
          privilege: `CREATE and DROP on the databases matching ${pattern}`,
          grant: `GRANT ALL ON ${quoteIdentifier('mysql', pattern)}.* TO ${await this.#account()};`,
        };
      });
    });
  }

  async dropDatabase(target: DatabaseTarget): Promise<void> {
    await this.#withSession(undefined, 'RESTORE_FAILED', (reader) =>
      reader.query(`DROP DATABASE IF EXISTS ${quoteIdentifier('mysql', target.name)}`),
    );
  }

  /** Strategy (b) from the top of this file: empty the live database, then copy the restored one in. */
  async replace(live: DatabaseTarget, restored: DatabaseTarget, options: { force: boolean }): Promise<void> {
    const dumpTool = requireTool('mysql-dump', this.#options.env);
    const client = requireTool('mysql-client', this.#options.env);
    const serverVersion = await this.#withSession(undefined, 'RESTORE_FAILED', async (reader) => {
      const found = await reader.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
        restored.name,
      ]);
      if (found.length === 0) {
        throw new FaberError(
          'RESTORE_FAILED',
          `The restored database ${restored.display} does not exist; the live database was not touched`,
        );
      }
      await clearSessions(reader, [live.name, restored.name], options.force, live);
      const characterSet = await characterSetOf(reader, live.name);
      await reader.query(`DROP DATABASE IF EXISTS ${quoteIdentifier('mysql', live.name)}`);
      await reader.query(`CREATE DATABASE ${quoteIdentifier('mysql', live.name)}${characterSet}`);
      const [row] = await reader.query('SELECT VERSION() AS version');
      return asText(row?.version);
    }).catch(async (error: unknown) => {
      throw await explainDenial(error, async () => ({
        action: 'replace the database (it is dropped and created again)',
        privilege: `ALL on ${live.name}`,
        grant: `GRANT ALL ON ${quoteIdentifier('mysql', mysqlGrantPattern(live.name))}.* TO ${await this.#account()};`,
      }));
    });
    try {
      await this.#copy({ dumpTool, client, serverVersion }, restored, live);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new FaberError(
        'RESTORE_FAILED',
        `Copying the restored database into ${live.display} failed; it is now incomplete. The restored copy is kept as ${restored.name}. ${reason}`,
        {
          result: { restored_copy: restored.name },
          suggestions: ['Run the restore again, or restore the pre-restore safety backup to undo'],
          cause: error,
        },
      );
    }
    await this.dropDatabase(restored);
  }

  async assertCanReplace(): Promise<void> {
    // replace() re-creates the live database with its character set and collation; grants are kept by name.
  }

  async assertNotInUse(live: DatabaseTarget, options: { force: boolean }): Promise<void> {
    if (options.force) return;
    await this.#withSession(undefined, 'RESTORE_FAILED', (reader) => clearSessions(reader, [live.name], false, live));
  }

  async close(): Promise<void> {
    // Connections are opened per operation and closed by it; nothing is pooled.
  }

  /** CURRENT_USER() as `user@host`, and whether it may create objects for other users (SUPER, SET USER, SET_USER_ID). */
  async #definerRights(): Promise<{ self: string; privileged: boolean }> {
    const [row] = await this.#withSession(undefined, 'RESTORE_FAILED', (reader) =>
      reader.query(
        `SELECT CURRENT_USER() AS self,
                (SELECT COUNT(*) FROM information_schema.user_privileges
                 WHERE privilege_type IN ('SUPER', 'SET USER', 'SET_USER_ID')
                   AND grantee = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')) AS privileged`,
      ),
    );
    return { self: asText(row?.self), privileged: Number(row?.privileged) > 0 };
  }

  /** `'app'@'%'`: the account the server matched, as a GRANT names it. */
  async #account(): Promise<string> {
    try {
      const [row] = await this.#withSession(undefined, 'RESTORE_FAILED', (reader) =>
        reader.query('SELECT CURRENT_USER() AS account'),
      );
      return mysqlAccount(String(row?.account));
    } catch {
      return mysqlAccount(`${this.#connection.user ?? ''}@%`);
    }
  }

  /**
   * mariadb-dump/mysqldump with --single-transaction --routines --triggers --events. Routine
   * bodies need SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE (MySQL 8.0.20+): without it they
   * are left out of the dump without an error.
   */
  async #backupPrivilege(): Promise<MissingPrivilege> {
    const account = await this.#account();
    const database = `${quoteIdentifier('mysql', mysqlGrantPattern(this.live.name))}.*`;
    return {
      action: 'back up the database',
      privilege: `SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on ${this.live.name}, and the right to read routine definitions`,
      grant: `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON ${database} TO ${account}; GRANT SELECT ON mysql.proc TO ${account};`,
    };
  }

  async #withSession<T>(
    database: string | undefined,
    fallback: ErrorCode,
    work: (reader: SqlReader) => Promise<T>,
  ): Promise<T> {
    const display =
      database === undefined ? urlWithDatabase(this.#connection.redacted, '') : this.target(database).display;
    const session: MysqlSession = await connectMysql(this.#connection, database, display, fallback);
    try {
      return await work(session.reader);
    } finally {
      await session.end();
    }
  }

  /** MySQL's mysqldump needs telling not to write GTID state, and (against MariaDB) not to read column statistics. */
  /** `--version` of a tool, asked once per handler (preflight and the dump both need it). */
  #toolVersion(tool: ClientTool): Promise<string> {
    let version = this.#versions.get(tool.path);
    if (!version) {
      version = toolVersion(tool, this.#options.env);
      this.#versions.set(tool.path, version);
    }
    return version;
  }

  async #dumpFlavourArguments(dumpTool: ClientTool, serverVersion: () => Promise<string>): Promise<string[]> {
    const toolIsMariaDb = isMariaDb(await this.#toolVersion(dumpTool));
    if (toolIsMariaDb) return [];
    return ['--set-gtid-purged=OFF', ...(isMariaDb(await serverVersion()) ? ['--column-statistics=0'] : [])];
  }

  #load(
    client: ClientTool,
    credentials: { env: NodeJS.ProcessEnv; firstArgument: string },
    target: DatabaseTarget,
    input: Readable,
    signal: AbortSignal,
  ): ToolRun {
    return runTool(client, [credentials.firstArgument, '--default-character-set=utf8mb4', '--', target.name], {
      env: credentials.env,
      signal,
      secrets: this.#secrets,
      failureCode: 'RESTORE_FAILED',
      stdout: 'ignore',
      input,
    });
  }

  async #copy(
    { dumpTool, client, serverVersion }: { dumpTool: ClientTool; client: ClientTool; serverVersion: string },
    from: DatabaseTarget,
    to: DatabaseTarget,
  ): Promise<void> {
    const credentials = await mysqlToolCredentials(this.#options.env, this.#connection, this.#options.tempDirectory);
    const signal = new AbortController().signal;
    try {
      const flavour = await this.#dumpFlavourArguments(dumpTool, () => Promise.resolve(serverVersion));
      const dump = runTool(dumpTool, [credentials.firstArgument, ...DUMP_ARGUMENTS, ...flavour, '--', from.name], {
        env: credentials.env,
        signal,
        secrets: this.#secrets,
        failureCode: 'RESTORE_FAILED',
        stdout: 'pipe',
      });
      const load = this.#load(client, credentials, to, dump.stdout!, signal);
      // A failed dump still ends its output cleanly, so the loader must be stopped explicitly.
      dump.done.catch(() => load.kill());
      const [dumped, loaded] = await Promise.allSettled([dump.done, load.done]);
      if (dumped.status === 'rejected') throw dumped.reason;
      if (loaded.status === 'rejected') throw loaded.reason;
    } finally {
      await credentials.file.remove();
    }
  }
}

const DUMP_ARGUMENTS = [
  '--single-transaction',
  '--routines',
  '--triggers',
  '--events',
  '--hex-blob',
  '--default-character-set=utf8mb4',
  '--no-tablespaces',
];

function unsupportedFormat(format: string): FaberError {
  return new FaberError('UNSUPPORTED', `MySQL/MariaDB backups are SQL dumps (format sql), not ${format}`, {
    suggestions: ['Set backup.format to "sql" or remove it from the config'],
  });
}

async function readSnapshot(
  reader: SqlReader,
  database: string,
  migrations: MigrationLookup,
): Promise<DatabaseSnapshot> {
  return {
    tableRowCounts: await mysqlRowCounts(reader, database),
    migrations: await readMigrationState(reader, migrations),
  };
}

/** ` CHARACTER SET x COLLATE y` of an existing database, or '' when it does not exist. */
async function characterSetOf(reader: SqlReader, database: string): Promise<string> {
  const [row] = await reader.query(
    'SELECT default_character_set_name AS charset, default_collation_name AS collation FROM information_schema.schemata WHERE schema_name = ?',
    [database],
  );
  const [charset, collation] = [asText(row?.charset), asText(row?.collation)];
  if (!SAFE_CHARSET.test(charset) || !SAFE_CHARSET.test(collation)) return '';
  return ` CHARACTER SET ${charset} COLLATE ${collation}`;
}

async function clearSessions(
  reader: SqlReader,
  databases: string[],
  force: boolean,
  live: DatabaseTarget,
): Promise<void> {
  // Without the PROCESS privilege a user sees only its own sessions: the check is best effort.
  const sessions = (await reader.query(
    'SELECT id, user, host FROM information_schema.processlist WHERE db IN (?) AND id <> CONNECTION_ID()',
    [databases],
  )) as unknown as Session[];
  if (sessions.length === 0) return;
  if (!force) {
    const users = [...new Set(sessions.map((session) => session.user).filter(Boolean))].join(', ');
    throw new FaberError(
      'CONNECTION_FAILED',
      `${sessions.length} other session(s) are connected to ${live.display}${users ? ` (users: ${users})` : ''}; the database cannot be replaced while in use`,
      {
        result: { sessions: sessions.length },
        suggestions: [
          'Stop the application (or close its connections) and run the restore again',
          'Or pass --force to kill those sessions',
        ],
      },
    );
  }
  for (const session of sessions) {
    // The session may have ended by itself meanwhile.
    await reader.query(`KILL ${Number(session.id)}`).catch(() => {});
  }
}
