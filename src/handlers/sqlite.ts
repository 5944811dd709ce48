import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { finished as streamFinished, pipeline } from 'node:stream/promises';
import type { StoredFormat } from '../catalog/formats.ts';
import type { ConnectionInfo } from '../config/connection.ts';
import { FaberError, toFaberError, type ErrorCode } from '../output/errors.ts';
import { cancelled, throwIfAborted } from './failures.ts';
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
import { SQLITE_ENGINE } from './sqlite-engine.ts';
import { copyDatabase } from './sqlite-copy.ts';
import { startIntegrityChecker, type IntegrityCheck } from './sqlite-integrity.ts';
import { FileBlockReader } from '../pipeline/file-blocks.ts';
import { FreeingWriteStream } from '../util/spent-buffers.ts';
import { quoteIdentifier, readMigrationState, type SqlReader } from './migrations.ts';
import type { MigrationState } from '../catalog/schema.ts';
import { randomTag, scratchName } from './names.ts';
import { ownedFileName, sweepAbandonedFiles } from './secret-file.ts';

/**
 * SQLite through node:sqlite, no external tool.
 *
 * Backup: the live file is copied into a private temp file under one read transaction, so the
 * copy is consistent however the application writes (sqlite-copy.ts: a rollback-journal database
 * is copied as a file while SQLite's SHARED lock makes its writers wait; a WAL one goes through the
 * online backup API in one step while the application keeps writing). Row counts and migrations
 * are read from that copy, so they describe exactly what is backed up.
 *
 * Restore: the bytes go to `<target>.faber-tmp-<random>`, must pass `PRAGMA integrity_check`, and
 * only then take the target's name. Replace renames the restored file over the live one.
 */

const HEADER = Buffer.from('SQLite format 3\0', 'latin1');
/** Files SQLite keeps next to a database while it is open or after a crash. */
const SIDE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;
const BUSY_TIMEOUT_MS = 10_000;

async function sizeOf(filePath: string): Promise<number | undefined> {
  try {
    return (await stat(filePath)).size;
  } catch {
    return undefined;
  }
}

function unsupportedFormat(format: string): FaberError {
  return new FaberError('UNSUPPORTED', `SQLite backups are database files (format sqlite), not ${format}`);
}

export function sqliteReader(db: DatabaseSync): SqlReader {
  return {
    dialect: 'sqlite',
    // node:sqlite is synchronous; the promise makes a failing statement a rejection, as the other engines' readers do.
    query: (sql, params = []) =>
      new Promise((resolve) => resolve(db.prepare(sql).all(...(params as Array<string | number | null>)))),
  };
}

/** Opens an existing database file (never creates one), runs `work`, closes it. */
async function withDatabase<T>(
  filePath: string,
  failure: ErrorCode,
  work: (db: DatabaseSync) => Promise<T> | T,
): Promise<T> {
  if ((await sizeOf(filePath)) === undefined) {
    throw new FaberError('CONNECTION_FAILED', `The SQLite database ${filePath} does not exist`, {
      result: { file: filePath },
      suggestions: ['Check the path in the connection URL (sqlite:path/to/file.db, relative to the workspace root)'],
    });
  }
  let db: DatabaseSync;
  try {
    // Read-write even for reading: a read-only connection leaves -wal/-shm files behind.
    db = new DatabaseSync(filePath, { timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw toFaberError(error, failure);
  }
  try {
    return await work(db);
  } catch (error) {
    throw toFaberError(error, failure);
  } finally {
    db.close();
  }
}

async function userTableRowCounts(reader: SqlReader): Promise<Record<string, number>> {
  const tables = await reader.query(
    `SELECT name FROM sqlite_schema
     WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%'
     ORDER BY name`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const [row] = await reader.query(`SELECT count(*) AS n FROM ${quoteIdentifier('sqlite', String(name))}`);
    counts[String(name)] = Number(row?.n);
  }
  return counts;
}

async function readSnapshot(db: DatabaseSync, migrations: MigrationLookup): Promise<DatabaseSnapshot> {
  const reader = sqliteReader(db);
  db.exec('BEGIN');
  try {
    return {
      tableRowCounts: await userTableRowCounts(reader),
      migrations: await readMigrationState(reader, migrations),
    };
  } finally {
    db.exec('COMMIT');
  }
}

async function assertHeader(
  filePath: string,
  failure: 'RESTORE_FAILED' | 'BACKUP_FAILED',
  what: string,
): Promise<void> {
  const handle = await open(filePath, 'r');
  const header = Buffer.alloc(HEADER.length);
  try {
    await handle.read(header, 0, HEADER.length, 0);
  } finally {
    await handle.close();
  }
  if (!header.equals(HEADER)) {
    throw new FaberError(failure, `${what} is not a SQLite database (wrong header): ${filePath}`);
  }
}

function assertNoProblems(
  problems: string[],
  filePath: string,
  failure: 'RESTORE_FAILED' | 'BACKUP_FAILED',
  what: string,
): void {
  if (problems.length !== 1 || problems[0] !== 'ok') {
    throw new FaberError(failure, `PRAGMA integrity_check failed for ${what}: ${problems.slice(0, 5).join('; ')}`, {
      result: { file: filePath, problems: problems.slice(0, 20) },
    });
  }
}

/** The file starts with SQLite's header and `PRAGMA integrity_check` says ok. */
async function assertIntact(
  filePath: string,
  failure: 'RESTORE_FAILED' | 'BACKUP_FAILED' = 'RESTORE_FAILED',
  what = 'the restored file',
): Promise<void> {
  await assertHeader(filePath, failure, what);
  const problems = await withDatabase(filePath, failure, (db) =>
    (db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>).map(
      (row) => row.integrity_check,
    ),
  ).catch((error: unknown) => [error instanceof Error ? error.message : String(error)]);
  assertNoProblems(problems, filePath, failure, what);
}

async function removeSideFiles(filePath: string): Promise<void> {
  await Promise.all(SIDE_SUFFIXES.map((suffix) => rm(filePath + suffix, { force: true })));
}

export class SqliteHandler implements DatabaseHandler {
  readonly provider = 'sqlite' as const;
  readonly engine = SQLITE_ENGINE;
  readonly live: DatabaseTarget;
  readonly #options: HandlerOptions;

  constructor(connection: ConnectionInfo, options: HandlerOptions) {
    if (!connection.filePath)
      throw new FaberError('CONNECTION_URL_INVALID', `A SQLite URL must name a file (${connection.redacted})`);
    this.#options = options;
    this.live = this.target(connection.filePath);
  }

  extension(format: StoredFormat): string {
    if (format !== 'sqlite') throw unsupportedFormat(format);
    return 'sqlite';
  }

  backupMethod(format: StoredFormat): string {
    this.extension(format);
    return 'node:sqlite backup';
  }

  async preflight(): Promise<ServerInfo> {
    const version = await withDatabase(this.live.name, 'CONNECTION_FAILED', (db) => {
      const row = db.prepare('SELECT sqlite_version() AS version').get() as { version: string };
      db.prepare('PRAGMA schema_version').get();
      return row.version;
    });
    const sizes = await Promise.all([sizeOf(this.live.name), sizeOf(`${this.live.name}-wal`)]);
    return {
      clientTool: 'node:sqlite',
      clientVersion: version,
      serverVersion: `node:sqlite ${version}`,
      databaseSizeBytes: sizes.reduce<number>((sum, size) => sum + (size ?? 0), 0),
    };
  }

  async startDump(request: DumpRequest): Promise<DumpSession> {
    throwIfAborted(request.signal, 'The backup');
    this.extension(request.format);
    await mkdir(this.#options.tempDirectory, { recursive: true, mode: 0o700 });
    await sweepAbandonedFiles(this.#options.tempDirectory);
    const copy = ownedFileName(this.#options.tempDirectory, 'sqlite', '.sqlite');
    // Started now, so that it is ready by the time the copy is.
    const checker = startIntegrityChecker();
    try {
      const method = await withDatabase(this.live.name, 'BACKUP_FAILED', (db) =>
        copyDatabase(db, this.live.name, copy, this.#options.env),
      );
      throwIfAborted(request.signal, 'The backup');
      await chmod(copy, 0o600);
      await assertHeader(copy, 'BACKUP_FAILED', 'the backup copy');
      // Runs on the second core while the copy streams; the backup fails unless it says ok.
      const integrity = checker.check(copy, BUSY_TIMEOUT_MS);
      const snapshot = await withDatabase(copy, 'BACKUP_FAILED', (db) => readSnapshot(db, request.migrations));
      const intact = integrity.problems.then((problems) =>
        assertNoProblems(problems, copy, 'BACKUP_FAILED', 'the backup copy'),
      );
      // Handled by the session's `finished`; a check of a tiny copy can fail before that is attached.
      intact.catch(() => {});
      return {
        ...(await this.#streamCopy(copy, snapshot, intact, integrity, request.signal)),
        checks: [`consistent copy: ${method}`, 'PRAGMA integrity_check: ok'],
      };
    } catch (error) {
      await checker.stop();
      await rm(copy, { force: true });
      throw request.signal.aborted ? cancelled('The backup') : toFaberError(error, 'BACKUP_FAILED');
    }
  }

  /**
   * Streams the copy while the integrity check reads it; `finished` waits for both. The copy is
   * unlinked as soon as the check is done (the open handle keeps its bytes readable), so nothing
   * lingers after a crash for longer than the check.
   */
  async #streamCopy(
    copy: string,
    snapshot: DatabaseSnapshot,
    intact: Promise<void>,
    integrity: IntegrityCheck,
    signal: AbortSignal,
  ): Promise<DumpSession> {
    const handle = await open(copy, 'r');
    const removeCopy = async () => {
      await rm(copy, { force: true });
      await removeSideFiles(copy);
    };
    const unlinked = intact.then(removeCopy, removeCopy);
    const stream = new FileBlockReader(handle);
    const onAbort = () => stream.destroy(cancelled('The backup'));
    signal.addEventListener('abort', onAbort, { once: true });
    const streamed = streamFinished(stream).catch(async (error: unknown) => {
      await integrity.stop();
      throw error;
    });
    const finished = Promise.all([streamed, intact])
      .then(() => undefined)
      .catch((error: unknown) => {
        throw signal.aborted ? cancelled('The backup') : toFaberError(error, 'BACKUP_FAILED');
      })
      .finally(async () => {
        signal.removeEventListener('abort', onAbort);
        await integrity.stop();
        await unlinked;
      });
    finished.catch(() => {});
    return {
      stream,
      snapshot: Promise.resolve(snapshot),
      finished,
      dispose: async () => {
        if (!stream.readableEnded) stream.destroy(cancelled('The backup'));
        await finished.catch(() => {});
      },
    };
  }

  async restore(target: DatabaseTarget, request: RestoreRequest): Promise<void> {
    throwIfAborted(request.signal, 'The restore');
    this.extension(request.format);
    if (!request.stream)
      throw new FaberError('INVALID_OPTION', 'Restoring a SQLite backup needs its bytes as a stream');
    await mkdir(path.dirname(target.name), { recursive: true });
    const temporary = `${target.name}.faber-tmp-${randomTag()}`;
    try {
      await pipeline(
        request.stream,
        new FreeingWriteStream(temporary, { mode: 0o600, flags: 'wx', highWaterMark: 1024 * 1024 }),
        {
          signal: request.signal,
        },
      );
      await assertIntact(temporary);
      await removeSideFiles(target.name);
      await rename(temporary, target.name);
    } catch (error) {
      await rm(temporary, { force: true });
      await removeSideFiles(temporary);
      throw request.signal.aborted ? cancelled('The restore') : toFaberError(error, 'RESTORE_FAILED');
    }
  }

  async inspect(target: DatabaseTarget, migrations: MigrationLookup): Promise<DatabaseSnapshot> {
    return withDatabase(target.name, 'VERIFICATION_FAILED', (db) => readSnapshot(db, migrations));
  }

  async migrationState(target: DatabaseTarget, migrations: MigrationLookup): Promise<MigrationState> {
    return withDatabase(target.name, 'BACKUP_FAILED', (db) => readMigrationState(sqliteReader(db), migrations));
  }

  async isEmpty(target: DatabaseTarget): Promise<boolean> {
    if (!(await sizeOf(target.name))) return true;
    const [row] = await withDatabase(target.name, 'RESTORE_FAILED', (db) =>
      sqliteReader(db).query(
        "SELECT count(*) AS n FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
      ),
    );
    return Number(row?.n) === 0;
  }

  target(name: string): DatabaseTarget {
    const filePath = path.resolve(name);
    return { name: filePath, display: filePath };
  }

  /** Next to the live file, so that replace() is a rename within one file system. */
  scratchTarget(purpose: 'verify' | 'restore'): DatabaseTarget {
    return this.target(scratchName(this.live.name, purpose));
  }

  async createDatabase(target: DatabaseTarget): Promise<void> {
    // restore() creates the file; only its directory has to exist.
    await mkdir(path.dirname(target.name), { recursive: true });
  }

  async dropDatabase(target: DatabaseTarget): Promise<void> {
    await rm(target.name, { force: true });
    await removeSideFiles(target.name);
  }

  async replace(live: DatabaseTarget, restored: DatabaseTarget, options: { force: boolean }): Promise<void> {
    if ((await sizeOf(restored.name)) === undefined) {
      throw new FaberError('RESTORE_FAILED', `The restored database ${restored.name} does not exist`);
    }
    const liveMode = await stat(live.name).then(
      (stats) => stats.mode & 0o777,
      () => undefined,
    );
    if (liveMode !== undefined) {
      await this.#assertNotInUse(live, options.force);
      await chmod(restored.name, liveMode);
    }
    // The old file's WAL or journal must not be applied to the new file.
    await removeSideFiles(live.name);
    await removeSideFiles(restored.name);
    await rename(restored.name, live.name);
  }

  async assertCanReplace(): Promise<void> {
    // A new file takes the old one's place; the file mode is copied in replace().
  }

  async assertNotInUse(live: DatabaseTarget, options: { force: boolean }): Promise<void> {
    if (options.force || (await sizeOf(live.name)) === undefined) return;
    await this.#assertNotInUse(live, false);
  }

  /**
   * Folds the WAL into the file and closes; SQLite deletes -wal/-shm when the last connection
   * closes, so if they (or a journal) are still there, another process has the database open.
   */
  async #assertNotInUse(live: DatabaseTarget, force: boolean): Promise<void> {
    await withDatabase(live.name, 'RESTORE_FAILED', (db) => {
      const mode = db.prepare('PRAGMA journal_mode').get() as { journal_mode: string };
      if (mode.journal_mode.toLowerCase() === 'wal') db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get();
    });
    const present = [];
    for (const suffix of SIDE_SUFFIXES) {
      if ((await sizeOf(live.name + suffix)) !== undefined) present.push(path.basename(live.name + suffix));
    }
    if (present.length === 0 || force) return;
    throw new FaberError(
      'CONNECTION_FAILED',
      `${live.name} is open in another process (${present.join(', ')} exist); it cannot be replaced while in use`,
      {
        result: { file: live.name, open_files: present },
        suggestions: [
          'Stop the application that uses the database and run the restore again',
          'Or pass --force (the other process keeps writing to the old, replaced file)',
        ],
      },
    );
  }

  async close(): Promise<void> {
    // Every operation opens and closes its own connection.
  }
}
