import type { BackupEntry, BackupSource } from '../catalog/schema.ts';
import { describeSource, isEnvironmentDatabase, sourceOf } from '../catalog/source.ts';
import { resolveConnection } from '../config/environment.ts';
import type { DatabaseHandler, DatabaseSnapshot, DatabaseTarget } from '../handlers/handler.ts';
import { FaberError, toFaberError } from '../output/errors.ts';
import { humanBytes, humanDuration } from '../output/format.ts';
import type { Reporter } from '../output/reporter.ts';
import { success, type OperationResult } from '../output/result.ts';
import { isVerified } from '../retention/plan.ts';
import { createBackup } from './backup.ts';
import { requireConfirmation } from './confirm.ts';
import { openDatabase, openWorkspace, type OperationContext, type Workspace } from './context.ts';
import {
  checkBeforeLoad,
  compareLoadedDigests,
  compareWithRecorded,
  describeSnapshot,
  loadingIdentities,
  migrationLookup,
  recordFileCheck,
  restoreInto,
} from './load-backup.ts';
import type { DecodedDigests, VerifyReport } from '../pipeline/verify.ts';
import { parseOptions } from './options.ts';
import { restoreOptionsSchema, type RestoreOptions } from './restore-options.ts';
import { BANNER_TITLE, runOperation, type OperationRun } from './run.ts';
import { backupFileOf, entriesInScope, findBackup, newestEntry, readEntries, type BackupScope } from './select.ts';
import type { BackupFile } from '../pipeline/verify.ts';
import { currentTime } from './clock.ts';
import { dropScratch } from './scratch.ts';

export type { RestoreOptions } from './restore-options.ts';

export interface RestoreResultData {
  backup_id: string;
  source_environment: string;
  /** The target, redacted (a URL without its password, or a file path). */
  target: string;
  database_name: string;
  format: BackupEntry['format'];
  safety_backup_id: string | null;
  tables: number;
  table_row_counts: Record<string, number>;
  migrations: { applied_count: number; last_migration: string | null };
  duration_ms: number;
  /** How to put the target back as it was; null when it was empty. */
  undo_command: string | null;
}

/**
 * Restores a backup so that a failure leaves the target as it was: the stored file's checksum is
 * verified, a safety backup of the target is taken, the backup is loaded into a scratch database
 * (its decoded content's checksum proven on the way) and checked against its record, and only
 * then swapped in for the target.
 */
export async function restoreBackup(
  rawOptions: RestoreOptions,
  ctx: OperationContext,
): Promise<OperationResult<RestoreResultData>> {
  const scope = { operation: 'restore', project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment,
    Operation: 'restore',
    From:
      rawOptions.from ??
      (rawOptions.beforeMigration ? `before migration ${rawOptions.beforeMigration}` : 'latest verified backup'),
    Target: rawOptions.targetConnectionStringEnv ? `database in $${rawOptions.targetConnectionStringEnv}` : undefined,
  });
  return runOperation<RestoreResultData>(scope, ctx, async (run) => {
    const started = Date.now();
    const options = parseOptions(restoreOptionsSchema, rawOptions, 'restore');
    refuseTwoSources(options);
    const workspace = await openWorkspace(ctx, options.environment);
    const backupScope = { project: ctx.projectName, environment: workspace.environment.name };
    refuseUnsafeSkip(options, workspace);
    const { entries } = await readEntries(workspace.catalog, ctx);
    const entry = selectSource(entries, options, backupScope, ctx, environmentSource(workspace, ctx));
    const filePath = await backupFileOf(workspace.catalog, entry);
    const fileCheck = await checkSourceFile(entry, filePath, workspace, ctx, run, backupScope);
    const { handler, connection } = await openDatabase(ctx, workspace, options.targetConnectionStringEnv);
    run.secrets.add(connection.password);
    try {
      const restore = new Restore(handler, workspace, options, { entry, filePath, fileCheck }, ctx, run);
      const data = await restore.run(started);
      return success(scope, data, `Restored ${entry.backup_id} into ${data.target}`);
    } finally {
      await handler.close();
    }
  });
}

function refuseTwoSources(options: RestoreOptions): void {
  if (!options.from || !options.beforeMigration) return;
  throw new FaberError(
    'INVALID_OPTION',
    '--from and --beforeMigration both pick the backup to restore; give one of them',
    {
      result: { from: options.from, beforeMigration: options.beforeMigration },
      suggestions: [
        'Keep --from=<backup id> to restore that backup, or --beforeMigration=<migration> to let the plugin pick',
      ],
    },
  );
}

function refuseUnsafeSkip(options: RestoreOptions, workspace: Workspace): void {
  if (!options.skipSafetyBackup || !workspace.environment.isProtected) return;
  throw new FaberError(
    'INVALID_OPTION',
    `--skipSafetyBackup is refused for the protected environment ${workspace.environment.name}: a restore there always backs up the target first`,
    {
      result: { environment: workspace.environment.name, protected: true },
      suggestions: ['Run the restore without --skipSafetyBackup'],
    },
  );
}

/** The environment's own database now, or undefined when its variable is unset (a restore into another target). */
function environmentSource(workspace: Workspace, ctx: OperationContext): BackupSource | undefined {
  try {
    return sourceOf(
      resolveConnection(workspace.config, workspace.environment, ctx.env, ctx.workspaceRoot),
      ctx.workspaceRoot,
      true,
    );
  } catch {
    return undefined;
  }
}

/**
 * An explicit --from may name any backup of the project (another environment's, another
 * database's); the default is only ever a backup of the environment's own database.
 */
function selectSource(
  entries: BackupEntry[],
  options: RestoreOptions,
  scope: BackupScope & { environment: string },
  ctx: OperationContext,
  current: BackupSource | undefined,
): BackupEntry {
  if (options.from) {
    const entry = findBackup(entries, options.from, { project: scope.project }, 'restore');
    if (entry.environment !== scope.environment)
      ctx.reporter.warn(
        `${entry.backup_id} is a backup of ${entry.environment}; restoring it into ${scope.environment}`,
      );
    else if (!isEnvironmentDatabase(entry, current))
      ctx.reporter.warn(
        `${entry.backup_id} is a backup of ${describeSource(entry)}, not of the ${scope.environment} database`,
      );
    return entry;
  }
  if (options.beforeMigration) return backupBeforeMigration(entries, options.beforeMigration, scope, current);
  const inEnvironment = entriesInScope(entries, scope);
  const newest = newestEntry(inEnvironment, (entry) => isVerified(entry) && isEnvironmentDatabase(entry, current));
  if (newest) return newest;
  const others = inEnvironment.filter((entry) => isVerified(entry) && !isEnvironmentDatabase(entry, current));
  const aside =
    others.length > 0
      ? ` (${others.length} verified backup${others.length === 1 ? ' is' : 's are'} of other databases and never restored by default)`
      : '';
  throw new FaberError(
    'BACKUP_NOT_FOUND',
    `No verified backup of the ${scope.environment} database of ${scope.project} to restore${aside}`,
    {
      result: {
        project: scope.project,
        environment: scope.environment,
        other_database_backups: others.map((entry) => entry.backup_id),
      },
      suggestions: [
        `See what there is: nx run ${scope.project}:list-backups:${scope.environment}`,
        `Name one explicitly: nx run ${scope.project}:restore:${scope.environment} --from=<backup id>`,
        `Re-check failed ones: nx run ${scope.project}:verify-backup:${scope.environment} --all`,
      ],
    },
  );
}

/** Pending lists are recorded by pre-migration backups only; a backup listing the name was taken before it ran. */
function backupBeforeMigration(
  entries: BackupEntry[],
  migration: string,
  scope: BackupScope & { environment: string },
  current: BackupSource | undefined,
): BackupEntry {
  const inScope = entriesInScope(entries, scope);
  const newest = newestEntry(
    inScope,
    (entry) =>
      isVerified(entry) &&
      isEnvironmentDatabase(entry, current) &&
      (entry.migrations.pending ?? []).includes(migration),
  );
  if (newest) return newest;
  const appliedIn = inScope.filter((entry) => entry.migrations.migrations_list.includes(migration)).length;
  throw new FaberError(
    'BACKUP_NOT_FOUND',
    `No verified pre-migration backup of ${scope.project} (${scope.environment}) was taken while ${migration} was pending`,
    {
      result: { project: scope.project, environment: scope.environment, migration, backups_with_it_applied: appliedIn },
      suggestions: [
        `Check the name: nx run ${scope.project}:list-backups:${scope.environment} --json shows each backup's migrations.pending`,
        'Only pre-migration backups (the pre-migrate-backup target) record pending migrations; older backups predate this',
        `Name a backup explicitly: nx run ${scope.project}:restore:${scope.environment} --from=<backup id>`,
      ],
    },
  );
}

/**
 * Nothing is touched before the file is known to be the one the catalog recorded (its size and
 * SHA-256; the decode is proven during the load). A failed check is recorded at once; a passed one
 * only once the load has proven the content too (a refused restore writes nothing).
 */
async function checkSourceFile(
  entry: BackupEntry,
  filePath: BackupFile,
  workspace: Workspace,
  ctx: OperationContext,
  run: OperationRun,
  scope: BackupScope & { environment: string },
): Promise<VerifyReport> {
  ctx.reporter.step(
    `Backup selected: ${entry.backup_id} (${entry.environment}, ${describeSource(entry)}, created ${entry.created_at}, ${humanBytes(entry.size_bytes)}, ${entry.format})`,
  );
  await loadingIdentities(entry, ctx.env, 'restore');
  const report = await checkBeforeLoad(entry, filePath, ctx.env, run.signal);
  if (run.signal.aborted) throw run.signal.reason;
  if (!report.passed) {
    await recordFileCheck(workspace.catalog, entry, report, currentTime(ctx));
    throw new FaberError(
      'VERIFICATION_FAILED',
      `The backup ${entry.backup_id} failed verification, so nothing was restored: ${report.problems.join('; ')}`,
      {
        result: {
          backup_id: entry.backup_id,
          file_path: entry.file_path,
          problems: report.problems,
          file_exists: report.file_exists,
        },
        suggestions: [
          `Pick another backup: nx run ${scope.project}:list-backups:${scope.environment}`,
          `Then: nx run ${scope.project}:restore:${scope.environment} --from=<backup id>`,
        ],
      },
    );
  }
  ctx.reporter.step(`Backup file checked: ${report.checks.join(', ')}`);
  return report;
}

/** The backup to restore: its entry, its file, and the check that file just passed. */
interface Source {
  entry: BackupEntry;
  filePath: BackupFile;
  fileCheck: VerifyReport;
}

/** One restore, step by step; the fields are what every step needs. */
class Restore {
  readonly #handler: DatabaseHandler;
  readonly #workspace: Workspace;
  readonly #options: RestoreOptions;
  readonly #entry: BackupEntry;
  readonly #filePath: BackupFile;
  readonly #fileCheck: VerifyReport;
  readonly #ctx: OperationContext;
  readonly #run: OperationRun;

  constructor(
    handler: DatabaseHandler,
    workspace: Workspace,
    options: RestoreOptions,
    source: Source,
    ctx: OperationContext,
    run: OperationRun,
  ) {
    this.#handler = handler;
    this.#workspace = workspace;
    this.#options = options;
    this.#entry = source.entry;
    this.#filePath = source.filePath;
    this.#fileCheck = source.fileCheck;
    this.#ctx = ctx;
    this.#run = run;
  }

  async run(started: number): Promise<RestoreResultData> {
    const live = this.#handler.live;
    this.#refuseOtherProvider();
    const empty = await this.#handler.isEmpty(live);
    this.#ctx.reporter.step(`Target: ${live.display} (${empty ? 'empty or new' : 'has data'})`);
    // Before asking, backing up and loading: a swap that other sessions would block fails now, not after the load.
    await this.#handler.assertNotInUse(live, { force: this.#options.force === true });
    await this.#confirm(live, empty);
    const safetyId = empty ? null : await this.#safetyBackup();
    const restored = await this.#restoreAndSwap(safetyId);
    const undo = safetyId ? this.#command(`--from=${safetyId}`) : null;
    const after = await this.#checkLive(restored, undo);
    const data: RestoreResultData = {
      backup_id: this.#entry.backup_id,
      source_environment: this.#entry.environment,
      target: live.display,
      database_name: this.#databaseName(),
      format: this.#entry.format,
      safety_backup_id: safetyId,
      tables: Object.keys(after.tableRowCounts).length,
      table_row_counts: after.tableRowCounts,
      migrations: { applied_count: after.migrations.applied_count, last_migration: after.migrations.last_migration },
      duration_ms: Date.now() - started,
      undo_command: undo,
    };
    this.#ctx.reporter.complete(
      BANNER_TITLE,
      {
        Environment: this.#workspace.environment.name,
        'Restored from': this.#entry.backup_id,
        Target: live.display,
        Tables: String(data.tables),
        Migrations: `${data.migrations.applied_count} applied${data.migrations.last_migration ? ` (last: ${data.migrations.last_migration})` : ''}`,
        'Safety backup': safetyId ?? 'none (the target was empty)',
        Duration: humanDuration(data.duration_ms),
      },
      undo ? ['To undo this restore (put back the data it replaced):', `  ${undo}`] : [],
    );
    return data;
  }

  /** The name people type to confirm: the database name, or the SQLite file's name. */
  #databaseName(): string {
    return this.#handler.engine.displayName(this.#handler.live.name);
  }

  #refuseOtherProvider(): void {
    if (this.#entry.provider === this.#handler.provider) return;
    throw new FaberError(
      'INVALID_OPTION',
      `${this.#entry.backup_id} is a ${this.#entry.provider} backup; the target is ${this.#handler.provider}`,
      {
        result: {
          backup_id: this.#entry.backup_id,
          backup_provider: this.#entry.provider,
          target_provider: this.#handler.provider,
        },
        suggestions: ['Restore it into a database of the same kind (--targetConnectionStringEnv names one)'],
      },
    );
  }

  /**
   * Protected environments (and those with require_approval) need the database name typed on a
   * terminal, or --yes; elsewhere a terminal gets a yes/no question and CI goes ahead.
   */
  async #confirm(live: DatabaseTarget, empty: boolean): Promise<void> {
    const environment = this.#workspace.environment;
    const strict = environment.isProtected || environment.settings.require_approval;
    if (!strict && !this.#ctx.interactive) return;
    const name = this.#databaseName();
    const replaced = empty
      ? 'It is empty'
      : `Its current content will be replaced${this.#options.skipSafetyBackup ? ', with no safety backup' : ' (a safety backup is taken first)'}`;
    await requireConfirmation(this.#ctx, {
      yes: this.#options.yes,
      question: `Restore ${this.#entry.backup_id}, a backup of ${describeSource(this.#entry)}, into database ${name} (${live.display}, ${environment.name})? ${replaced}.`,
      expected: strict ? name : undefined,
      command: this.#command(`--from=${this.#entry.backup_id}`),
      result: { backup_id: this.#entry.backup_id, environment: environment.name, database: name },
    });
  }

  async #safetyBackup(): Promise<string | null> {
    if (this.#options.skipSafetyBackup) {
      this.#ctx.reporter.warn('No safety backup (--skipSafetyBackup): this restore cannot be undone');
      return null;
    }
    this.#ctx.reporter.step('Taking a safety backup of the target (reason: pre-restore)');
    const environment = this.#workspace.environment;
    const target = this.#options.targetConnectionStringEnv;
    // A backup of the target, recorded as such: never mistaken for one of the environment's database.
    const result = await createBackup(
      { environment: environment.name, reason: 'pre-restore', label: 'pre-restore', yes: true },
      { ...this.#ctx, reporter: nestedReporter(this.#ctx.reporter), interactive: false, signal: this.#run.signal },
      target ? { connectionStringEnv: target } : undefined,
    );
    if (result.status === 'error') {
      throw new FaberError(
        result.error_code,
        `The safety backup of the target failed, so nothing was restored: ${result.error}`,
        {
          result: result.result,
          suggestions: result.recovery.suggestions,
        },
      );
    }
    if (!('backup_id' in result.result)) throw new FaberError('INTERNAL_ERROR', 'The safety backup was skipped');
    this.#ctx.reporter.step(`Safety backup created: ${result.result.backup_id} (${result.result.size_human})`);
    return result.result.backup_id;
  }

  /**
   * Loads into a scratch database, checks it against the record, then swaps it in. Until the swap
   * the target is never touched, and any failure drops the scratch copy. PostgreSQL and SQLite swap
   * atomically; MySQL's replace copies into the emptied live database and, if that copy breaks,
   * says so with `restored_copy` in its error and keeps the scratch copy: then the target changed.
   */
  async #restoreAndSwap(safetyId: string | null): Promise<DatabaseSnapshot> {
    const handler = this.#handler;
    const scratch = handler.scratchTarget('restore');
    let snapshot: DatabaseSnapshot;
    try {
      snapshot = await this.#loadScratch(scratch);
      if (this.#run.signal.aborted) throw this.#run.signal.reason;
    } catch (error) {
      await this.#dropScratch(scratch);
      throw this.#untouched(error);
    }
    try {
      await handler.replace(handler.live, scratch, { force: this.#options.force === true });
    } catch (error) {
      if (error instanceof FaberError && typeof error.result.restored_copy === 'string')
        throw this.#leftIncomplete(error, safetyId);
      await this.#dropScratch(scratch);
      throw this.#untouched(error);
    }
    this.#ctx.reporter.step(`Swapped the restored copy in for ${handler.live.display}`);
    return snapshot;
  }

  async #loadScratch(scratch: DatabaseTarget): Promise<DatabaseSnapshot> {
    const handler = this.#handler;
    await handler.createDatabase(scratch);
    await handler.assertCanReplace(handler.live, scratch);
    this.#ctx.reporter.step(
      `Restoring into ${handler.engine.describeScratch(scratch)} with ${handler.engine.restoreMethod(this.#entry.format)}`,
    );
    await this.#proveLoaded(await this.#load(scratch));
    const snapshot = await handler.inspect(scratch, migrationLookup(this.#workspace.config));
    const differences = compareWithRecorded(this.#entry, snapshot);
    if (differences.length > 0) {
      throw new FaberError(
        'RESTORE_FAILED',
        `The restored copy does not match what the backup recorded: ${differences.join('; ')}`,
        { result: { differences } },
      );
    }
    this.#ctx.reporter.step(`Restored copy checked: ${describeSnapshot(snapshot)}`);
    return snapshot;
  }

  async #load(scratch: DatabaseTarget): Promise<DecodedDigests | undefined> {
    try {
      const identities = await loadingIdentities(this.#entry, this.#ctx.env, 'restore');
      return await restoreInto(
        this.#handler,
        scratch,
        this.#entry,
        this.#filePath,
        this.#workspace.config,
        this.#run.signal,
        this.#ctx.reporter,
        identities,
      );
    } catch (error) {
      if (error instanceof FaberError && error.code === 'VERIFICATION_FAILED') await this.#recordCheck([error.message]);
      throw error;
    }
  }

  /** Before the swap: the bytes loaded were the file checked, and they decoded to exactly the dump recorded. */
  async #proveLoaded(digests: DecodedDigests | undefined): Promise<void> {
    const loaded = { checks: [] as string[], problems: [] as string[] };
    if (digests) compareLoadedDigests(this.#entry, digests, loaded);
    await this.#recordCheck(loaded.problems, loaded.checks);
    if (loaded.problems.length > 0) {
      throw new FaberError(
        'VERIFICATION_FAILED',
        `The backup ${this.#entry.backup_id} failed verification while it was loaded, so it was not swapped in: ${loaded.problems.join('; ')}`,
        {
          result: { backup_id: this.#entry.backup_id, file_path: this.#entry.file_path, problems: loaded.problems },
          suggestions: [
            `Pick another backup: nx run ${this.#ctx.projectName}:list-backups:${this.#workspace.environment.name}`,
          ],
        },
      );
    }
    if (loaded.checks.length > 0) this.#ctx.reporter.step(`Backup content verified: ${loaded.checks.join(', ')}`);
  }

  /** The check made before loading, with what the load added, in the catalog. */
  #recordCheck(problems: string[], checks: string[] = []): Promise<BackupEntry> {
    const before = this.#fileCheck;
    const report: VerifyReport = {
      ...before,
      checks: [...before.checks, ...checks],
      problems: [...before.problems, ...problems],
      passed: before.passed && problems.length === 0,
    };
    return recordFileCheck(this.#workspace.catalog, this.#entry, report, currentTime(this.#ctx));
  }

  #leftIncomplete(error: FaberError, safetyId: string | null): FaberError {
    const undo = safetyId ? this.#command(`--from=${safetyId}`) : null;
    return new FaberError(
      'RESTORE_FAILED',
      `Restore failed while replacing the target, which may now be incomplete: ${error.message}`,
      {
        cause: error,
        result: { ...error.result, backup_id: this.#entry.backup_id, target_changed: true, safety_backup_id: safetyId },
        suggestions: [
          ...(undo ? [`Put the target back as it was: ${undo}`] : []),
          `Or run the restore again: ${this.#command(`--from=${this.#entry.backup_id}`)}`,
          ...error.suggestions,
        ],
      },
    );
  }

  async #dropScratch(scratch: DatabaseTarget): Promise<void> {
    await dropScratch(this.#handler, scratch, this.#ctx.reporter, (text) => this.#run.secrets.redact(text));
  }

  #untouched(error: unknown): FaberError {
    const cause = toFaberError(this.#run.signal.aborted ? (this.#run.signal.reason ?? error) : error, 'RESTORE_FAILED');
    if (cause.code === 'CANCELLED') {
      return new FaberError('CANCELLED', `The restore was cancelled; the target database was not changed`, {
        cause: error,
        result: { target_changed: false },
        suggestions: ['Run the target again when ready'],
      });
    }
    const id = this.#entry.backup_id;
    const environment = this.#workspace.environment.name;
    return new FaberError(cause.code, `Restore failed; the target database was not changed: ${cause.message}`, {
      cause: error,
      result: { ...cause.result, backup_id: id, target_changed: false },
      suggestions: [
        ...cause.suggestions,
        `Check the backup with a restore drill: nx run ${this.#ctx.projectName}:verify-backup:${environment} --backupId=${id} --deep`,
        `Or restore an older backup: nx run ${this.#ctx.projectName}:list-backups:${environment}`,
      ],
    });
  }

  /** After the swap: the live database answers, its migration table reads, and it has the restored tables. */
  async #checkLive(restored: DatabaseSnapshot, undo: string | null): Promise<DatabaseSnapshot> {
    const fail = (message: string, cause?: unknown) =>
      new FaberError('RESTORE_FAILED', `The backup was swapped in, but the post-restore check failed: ${message}`, {
        cause,
        result: { backup_id: this.#entry.backup_id, target_changed: true },
        suggestions: undo
          ? [`Undo the restore: ${undo}`]
          : ['Inspect the database; the target was empty before the restore'],
      });
    let after: DatabaseSnapshot;
    try {
      after = await this.#handler.inspect(this.#handler.live, migrationLookup(this.#workspace.config));
    } catch (error) {
      throw fail((error as Error).message, error);
    }
    const expectedTables = Object.keys(restored.tableRowCounts).length;
    const tables = Object.keys(after.tableRowCounts).length;
    if (tables !== expectedTables || after.migrations.applied_count !== restored.migrations.applied_count) {
      throw fail(
        `found ${tables} tables and ${after.migrations.applied_count} migrations, the restored copy had ${expectedTables} and ${restored.migrations.applied_count}`,
      );
    }
    const migrationTable = after.migrations.table
      ? `migration table ${after.migrations.table} readable`
      : 'no migration table';
    this.#ctx.reporter.step(`Post-restore check: ${describeSnapshot(after)}; ${migrationTable}`);
    return after;
  }

  #command(extra: string): string {
    const target = this.#options.targetConnectionStringEnv
      ? ` --targetConnectionStringEnv=${this.#options.targetConnectionStringEnv}`
      : '';
    return `nx run ${this.#ctx.projectName}:restore:${this.#workspace.environment.name} ${extra}${target}`;
  }
}

/** The safety backup's lines, shown as sub-steps of the restore (its own banners are dropped). */
function nestedReporter(parent: Reporter): Reporter {
  const nothing = () => undefined;
  return {
    start: nothing,
    step: (message) => parent.info(`↳ ${message}`),
    info: (message) => parent.info(`  ${message}`),
    warn: (message) => parent.warn(message),
    progress: (update) => parent.progress(update),
    complete: nothing,
    fail: nothing,
  };
}
