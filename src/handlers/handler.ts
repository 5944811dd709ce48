import type { Readable } from 'node:stream';
import type { Compression, MigrationTool, Provider } from '../config/schema.ts';
import type { StoredFormat } from '../catalog/formats.ts';
import type { MigrationState } from '../catalog/schema.ts';
import type { ClientTool } from './tools.ts';

/**
 * One interface, one implementation per engine (postgresql.ts, mysql.ts, sqlite.ts).
 *
 * A handler is bound to one server (or, for SQLite, one file); methods that act on another
 * database of the same server take a `DatabaseTarget` made by `target()`/`scratchTarget()`.
 * Handlers never put a password on a command line and redact it from every error they raise.
 */
export interface DatabaseHandler {
  readonly provider: Provider;
  /** What is known of the engine without a connection (also found by engineOf(provider)). */
  readonly engine: Engine;
  /** The database the config points at. */
  readonly live: DatabaseTarget;

  /** File name extension (without compression suffix) for a format: sql, dump, sqlite; '' for directory. */
  extension(format: StoredFormat): string;
  /** `pg_dump`, `mariadb-dump`, `node:sqlite backup`: recorded as the entry's backup_method. */
  backupMethod(format: StoredFormat): string;

  /**
   * Pre-checks before a backup: the client tool exists and is new enough for the server
   * (TOOL_NOT_FOUND, TOOL_VERSION_MISMATCH), the database answers (CONNECTION_FAILED,
   * AUTHENTICATION_FAILED), and how big it is for the disk-space estimate.
   */
  preflight(): Promise<ServerInfo>;

  /**
   * Starts a dump of the live database. Migration state and row counts are read in the same
   * snapshot as the dump where the engine allows it (PostgreSQL: exported snapshot).
   */
  startDump(request: DumpRequest): Promise<DumpSession>;

  /** Loads a backup into `target` (which must exist and be empty, or be a new SQLite path). */
  restore(target: DatabaseTarget, request: RestoreRequest): Promise<void>;

  /** Tables (schema-qualified where the engine has schemas) with exact row counts, and migration state. */
  inspect(target: DatabaseTarget, migrations: MigrationLookup): Promise<DatabaseSnapshot>;

  /** The migration state alone (no row counts): cheap enough to ask before deciding to back up. */
  migrationState(target: DatabaseTarget, migrations: MigrationLookup): Promise<MigrationState>;

  /** True when the target does not exist or holds no user tables. */
  isEmpty(target: DatabaseTarget): Promise<boolean>;

  /** Another database on the same server (or a file path for SQLite). */
  target(name: string): DatabaseTarget;
  /** A uniquely named throwaway database next to the live one (not created yet). */
  scratchTarget(purpose: 'verify' | 'restore'): DatabaseTarget;
  createDatabase(target: DatabaseTarget): Promise<void>;
  /** Drops the database (or deletes the file); no error when it does not exist. */
  dropDatabase(target: DatabaseTarget): Promise<void>;

  /**
   * Makes `restored` the live database `live` and removes the old content. PostgreSQL: rename
   * swap (fails with CONNECTION_FAILED if other sessions use `live`, unless `force` terminates
   * them). SQLite: atomic file rename. MySQL: see mysql.ts for how it is done.
   */
  replace(live: DatabaseTarget, restored: DatabaseTarget, options: { force: boolean }): Promise<void>;

  /**
   * Fails with CONNECTION_FAILED (saying who) when other sessions use `live` and `force` is off:
   * called before a restore loads anything, so a long load is not done for a swap that cannot
   * happen. replace() checks again at the swap. No error when `live` does not exist.
   */
  assertNotInUse(live: DatabaseTarget, options: { force: boolean }): Promise<void>;

  /**
   * Before a restore loads anything into `restored` (just created, empty): checks that replace()
   * will be able to give it what a dump does not carry and the database it replaces has
   * (PostgreSQL: encoding and locale, owner, privileges, database and per-role settings, comment,
   * connection limit), and fails with a clear error otherwise. No-op when `live` does not exist.
   */
  assertCanReplace(live: DatabaseTarget, restored: DatabaseTarget): Promise<void>;

  /** Closes pooled connections. */
  close(): Promise<void>;
}

/**
 * The engine's facts that need no connection: the formats it stores, how people name its
 * databases, how its dumps end. Operations and the pipeline ask these instead of branching on
 * the provider, so an engine is added in src/handlers alone. One object per engine
 * (postgresql-engine.ts, ...), found by engineOf() in engines.ts for code that has only a
 * catalog entry (the file checks).
 */
export interface Engine {
  readonly provider: Provider;
  /** Default TCP port; null for an engine whose database is a file. */
  readonly defaultPort: number | null;
  /** True when a database is a file named by its path (SQLite), not a name on a server. */
  readonly databaseIsFile: boolean;
  /**
   * The format a backup is stored in when `requested` is configured (SQLite: always its own);
   * INVALID_OPTION when the engine has no such format.
   */
  storedFormat(requested: StoredFormat): StoredFormat;
  /** How a restore loads a format, for progress lines: `psql (ON_ERROR_STOP)`, `the mysql client`. */
  restoreMethod(format: StoredFormat): string;
  /** Where a restore or drill loads first, for progress lines: `a scratch database x`, `a temporary file`. */
  describeScratch(scratch: DatabaseTarget): string;
  /** The name people see and type to confirm: the database name, or the SQLite file's name. */
  displayName(database: string): string;
  /** How a complete dump in `format` begins or ends: checked on every backup file. */
  dumpMarks(format: StoredFormat): DumpMarks;
  /**
   * The client tool that reads a backup in `format` through (pg_restore --list) for the file
   * check; undefined when the format has none. TOOL_NOT_FOUND when it is not on `env`'s PATH.
   */
  formatCheck(format: StoredFormat, env: NodeJS.ProcessEnv): FormatCheck | undefined;
}

export interface DumpMarks {
  /** A complete dump ends with one of these lines; a dump without was cut short. */
  trailers?: readonly string[];
  /** Bytes the file starts with, and what the check reports when they are there or not. */
  header?: { bytes: Buffer; present: string; missing: string };
}

export interface FormatCheck {
  /** How reports name the check: `pg_restore --list`. */
  label: string;
  tool: ClientTool;
  /** The backup comes on stdin, or for a directory backup as one more argument. */
  args: readonly string[];
}

/** A database on the handler's server, or a SQLite file. */
export interface DatabaseTarget {
  /** Database name (PostgreSQL/MySQL) or absolute file path (SQLite). */
  name: string;
  /** What may be shown to people: the redacted URL or the file path. */
  display: string;
}

export interface ServerInfo {
  clientTool: string;
  clientVersion: string;
  serverVersion: string;
  databaseSizeBytes: number;
}

export interface MigrationLookup {
  tool: MigrationTool | undefined;
  /** Explicit table from `migrations.table`; otherwise the tool's default table. */
  table: string | undefined;
}

export interface DumpRequest {
  format: StoredFormat;
  /** Directory format only: the directory pg_dump writes (it must not exist yet). */
  directory?: string;
  /** Directory format: pg_dump -j. */
  parallelJobs?: number;
  /**
   * Directory format only (single-file dumps are compressed by our pipeline, so the tool must
   * write them uncompressed): 'none' → pg_dump -Z0, anything else → pg_dump's gzip at level 1.
   */
  compression?: Compression;
  migrations: MigrationLookup;
  /** Aborting kills the dump tool; `finished` then rejects with CANCELLED. */
  signal: AbortSignal;
}

export interface DumpSession {
  /** The dump bytes for single-file formats; undefined for the directory format. */
  stream: Readable | undefined;
  /**
   * Read in the same snapshot as the dump where the engine allows, while the dump runs (counting
   * rows before the first byte would hold the dump back). Settled once `finished` is; a failure
   * here stops the dump and fails `finished` with it.
   */
  snapshot: Promise<DatabaseSnapshot>;
  /** Resolves when the tool exited 0 and all output was produced; rejects with a FaberError otherwise. */
  finished: Promise<void>;
  /** Kills the tool and releases connections and temp files; safe to call more than once. */
  dispose(): Promise<void>;
  /**
   * Checks already passed by the bytes being streamed (SQLite: `PRAGMA integrity_check` of the
   * snapshot copy). The backup proves it stores exactly these bytes, so they hold for the backup.
   */
  checks?: string[];
}

export interface DatabaseSnapshot {
  tableRowCounts: Record<string, number>;
  migrations: MigrationState;
}

export interface RestoreRequest {
  format: StoredFormat;
  /** Decoded (uncompressed) dump bytes for single-file formats. */
  stream?: Readable;
  /** Directory format: the backup directory. */
  directory?: string;
  parallelJobs?: number;
  signal: AbortSignal;
  /** What the restore had to change to load at all (MySQL: definers rewritten), for people to read. */
  onWarning?: (message: string) => void;
}
