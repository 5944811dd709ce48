import type { Readable } from 'node:stream';
import type { ConnectionInfo } from '../config/connection.ts';
import type { Compression, MigrationTool, Provider } from '../config/schema.ts';
import type { StoredFormat } from '../catalog/formats.ts';
import type { MigrationState } from '../catalog/schema.ts';

/**
 * One interface, one implementation per engine (postgresql.ts, mysql.ts, sqlite.ts).
 *
 * A handler is bound to one server (or, for SQLite, one file); methods that act on another
 * database of the same server take a `DatabaseTarget` made by `target()`/`scratchTarget()`.
 * Handlers never put a password on a command line and redact it from every error they raise.
 */
export interface DatabaseHandler {
  readonly provider: Provider;
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
  /** Read in the same snapshot as the dump where the engine allows. */
  snapshot: DatabaseSnapshot;
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
