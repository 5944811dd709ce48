import type { BackupEntry, BackupStatus, Verification } from '../catalog/schema.ts';
import type { DatabaseHandler } from '../handlers/handler.ts';
import { FaberError } from '../output/errors.ts';
import { humanBytes, humanDuration } from '../output/format.ts';
import { success, type OperationResult } from '../output/result.ts';
import type { VerifyReport } from '../pipeline/verify.ts';
import { openDatabase, openWorkspace, type OperationContext, type Workspace } from './context.ts';
import {
  applyFileCheck,
  compareWithRecorded,
  describeSnapshot,
  loadingIdentities,
  migrationLookup,
  restoreInto,
  verifyEntryFile,
} from './load-backup.ts';
import { isPermissionDenied } from '../handlers/privileges.ts';
import { parseOptions } from './options.ts';
import { verifyOptionsSchema, type VerifyBackupOptions } from './verify-options.ts';
import { BANNER_TITLE, runOperation, type OperationRun } from './run.ts';
import {
  backupFileOf,
  entriesInScope,
  findBackup,
  newestEntry,
  noBackupsError,
  readEntries,
  type BackupScope,
} from './select.ts';
import type { BackupFile } from '../pipeline/verify.ts';
import { currentTime } from './clock.ts';
import { dropScratch } from './scratch.ts';

export type { VerifyBackupOptions } from './verify-options.ts';

type RestoreTest = NonNullable<Verification['restore_test']>;

export interface VerifiedBackup {
  backup_id: string;
  environment: string;
  file_path: string;
  passed: boolean;
  status: BackupStatus;
  file_exists: boolean;
  file_readable: boolean;
  size_bytes: number;
  checks: string[];
  problems: string[];
  /** What could not be checked (an encrypted backup without its identity is not decoded). */
  notes: string[];
  restore_test: RestoreTest | null;
}

export interface VerifyResultData {
  backups: VerifiedBackup[];
  passed_count: number;
  failed_count: number;
  deep: boolean;
}

/** Re-checks backups against the catalog (and with --deep restores them into a scratch database). */
export async function verifyBackup(
  rawOptions: VerifyBackupOptions,
  ctx: OperationContext,
): Promise<OperationResult<VerifyResultData>> {
  const scope = { operation: 'verify-backup', project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment,
    Operation: 'verify-backup',
    Backup: rawOptions.backupId ?? (rawOptions.all ? 'all' : 'latest'),
    Mode: rawOptions.deep ? 'deep (restore drill)' : undefined,
  });
  return runOperation<VerifyResultData>(scope, ctx, async (run) => {
    const options = parseOptions(verifyOptionsSchema, rawOptions, 'verify-backup');
    const workspace = await openWorkspace(ctx, options.environment);
    const backupScope = { project: ctx.projectName, environment: workspace.environment.name };
    const { entries, warnings } = await readEntries(workspace.catalog, ctx);
    const selected = selectBackups(entries, options, backupScope);
    ctx.reporter.step(
      `Selected ${selected.length === 1 ? `backup ${selected[0]?.backup_id}` : `${selected.length} backups`}`,
    );
    // A restore drill of an encrypted backup needs its key: known before any database is touched.
    if (options.deep) for (const entry of selected) await loadingIdentities(entry, ctx.env, 'verify-backup --deep');
    const drill = options.deep ? await openDrill(ctx, workspace, run) : undefined;
    const results: VerifiedBackup[] = [];
    try {
      for (const entry of selected) results.push(await verifyOne(entry, workspace, ctx, run, drill));
    } finally {
      await drill?.handler.close();
    }
    const data = summary(results, options.deep === true);
    if (data.failed_count > 0) throw verificationFailed(data, backupScope);
    ctx.reporter.complete(BANNER_TITLE, {
      Environment: workspace.environment.name,
      Verified: `${data.passed_count} backup${data.passed_count === 1 ? '' : 's'}`,
      Checks: options.deep ? 'file, checksums, format, restore drill' : 'file, checksums, format',
    });
    return success(
      scope,
      data,
      `${data.passed_count} backup${data.passed_count === 1 ? '' : 's'} verified`,
      warnings.concat(drill?.warnings ?? []),
    );
  });
}

function selectBackups(entries: BackupEntry[], options: VerifyBackupOptions, scope: BackupScope): BackupEntry[] {
  if (options.backupId) return [findBackup(entries, options.backupId, scope, 'verify-backup')];
  const candidates = entriesInScope(entries, scope);
  if (options.all) {
    if (candidates.length === 0) throw noBackupsError(scope);
    return candidates;
  }
  const newest = newestEntry(candidates);
  if (!newest) throw noBackupsError(scope);
  return [newest];
}

interface Drill {
  handler: DatabaseHandler;
  warnings: string[];
}

/** The server for restore drills: `verify.connection_string_env` if the config names one, else the environment's own. */
async function openDrill(ctx: OperationContext, workspace: Workspace, run: OperationRun): Promise<Drill> {
  const variable = workspace.config.verify.connection_string_env;
  const { handler, connection } = await openDatabase(ctx, workspace, variable);
  run.secrets.add(connection.password);
  ctx.reporter.step(
    `Restore drills on ${handler.engine.databaseIsFile ? 'a temporary file' : `the server of ${connection.redacted}`}`,
  );
  return { handler, warnings: [] };
}

async function verifyOne(
  entry: BackupEntry,
  workspace: Workspace,
  ctx: OperationContext,
  run: OperationRun,
  drill: Drill | undefined,
): Promise<VerifiedBackup> {
  const filePath = await backupFileOf(workspace.catalog, entry);
  const report = await verifyEntryFile(entry, filePath, ctx.env, run.signal);
  // An interrupted check says nothing about the file: record nothing.
  if (run.signal.aborted) throw run.signal.reason;
  reportFileCheck(entry, report, ctx);
  const restoreTest = drill && report.passed ? await restoreDrill(drill, entry, filePath, workspace, ctx, run) : null;
  const now = currentTime(ctx);
  const saved = await workspace.catalog.patch(entry.backup_id, (current) => {
    applyFileCheck(current, report, now);
    if (!restoreTest) return;
    current.verification.restore_test = restoreTest;
    if (restoreTest.status === 'passed') current.verification.verified_at = restoreTest.tested_at;
    else current.status = 'verification_failed';
  });
  return {
    backup_id: entry.backup_id,
    environment: entry.environment,
    file_path: entry.file_path,
    passed: report.passed && restoreTest?.status !== 'failed',
    status: saved.status,
    file_exists: report.file_exists,
    file_readable: report.file_readable,
    size_bytes: report.size_bytes,
    checks: report.checks,
    notes: report.notes ?? [],
    problems: report.problems.concat(
      restoreTest?.status === 'failed' ? [`restore drill: ${restoreTest.details ?? 'failed'}`] : [],
    ),
    restore_test: restoreTest,
  };
}

function reportFileCheck(entry: BackupEntry, report: VerifyReport, ctx: OperationContext): void {
  if (report.passed) ctx.reporter.step(`${entry.backup_id}: file intact (${humanBytes(report.size_bytes)})`);
  else ctx.reporter.warn(`${entry.backup_id}: verification failed`);
  for (const check of report.checks) ctx.reporter.info(`✓ ${check}`);
  for (const problem of report.problems) ctx.reporter.info(`✗ ${problem}`);
  for (const note of report.notes ?? []) ctx.reporter.warn(`${entry.backup_id}: ${note}`);
}

/**
 * Restores the backup into a throwaway database and compares it with what was recorded at backup
 * time. The scratch database is dropped however the drill ends. A backup that does not load or
 * does not match fails the drill; a server that cannot host the drill fails the operation.
 */
async function restoreDrill(
  drill: Drill,
  entry: BackupEntry,
  filePath: BackupFile,
  workspace: Workspace,
  ctx: OperationContext,
  run: OperationRun,
): Promise<RestoreTest> {
  const started = Date.now();
  const testedAt = currentTime(ctx).toISOString();
  const finish = (status: RestoreTest['status'], details: string): RestoreTest => {
    const test = {
      status,
      tested_at: testedAt,
      duration_ms: Date.now() - started,
      details: run.secrets.redact(details),
    };
    if (status === 'passed')
      ctx.reporter.step(
        `${entry.backup_id}: restore drill passed in ${humanDuration(test.duration_ms)} (${test.details})`,
      );
    else ctx.reporter.warn(`${entry.backup_id}: restore drill failed: ${test.details}`);
    return test;
  };
  const { handler } = drill;
  if (entry.provider !== handler.provider) {
    return finish('failed', `a ${entry.provider} backup cannot be restored on the ${handler.provider} drill server`);
  }
  const scratch = handler.scratchTarget('verify');
  try {
    await handler.createDatabase(scratch);
    try {
      await restoreInto(
        handler,
        scratch,
        entry,
        filePath,
        workspace.config,
        run.signal,
        undefined,
        await loadingIdentities(entry, ctx.env, 'verify-backup --deep'),
      );
    } catch (error) {
      // A user without a privilege says nothing about the backup: the operation fails, the backup stays valid.
      if (run.signal.aborted || isPermissionDenied(error)) throw error;
      return finish('failed', `the backup does not restore: ${(error as Error).message}`);
    }
    const snapshot = await handler.inspect(scratch, migrationLookup(workspace.config));
    const differences = compareWithRecorded(entry, snapshot);
    if (differences.length > 0) return finish('failed', differences.join('; '));
    const recorded = entry.table_row_counts
      ? 'tables, row counts and migrations match the record'
      : 'migrations match the record (no row counts were recorded)';
    return finish('passed', `${describeSnapshot(snapshot)}; ${recorded}`);
  } finally {
    const warning = await dropScratch(handler, scratch, ctx.reporter);
    if (warning) drill.warnings.push(warning);
  }
}

function summary(results: VerifiedBackup[], deep: boolean): VerifyResultData {
  const passed = results.filter((result) => result.passed).length;
  return { backups: results, passed_count: passed, failed_count: results.length - passed, deep };
}

function verificationFailed(data: VerifyResultData, scope: BackupScope & { environment: string }): FaberError {
  const failed = data.backups.filter((result) => !result.passed);
  const first = failed[0];
  const missing = failed.some((result) => !result.file_exists);
  const suggestions = [
    `Take a new backup: nx run ${scope.project}:backup:${scope.environment}`,
    ...(first
      ? [
          `Delete a damaged backup: nx run ${scope.project}:delete-backup:${scope.environment} --backupId=${first.backup_id}`,
        ]
      : []),
    ...(missing
      ? [`Remove entries whose file is gone: nx run ${scope.project}:cleanup-backups:${scope.environment} --yes`]
      : []),
  ];
  const headline = failed.map((result) => `${result.backup_id}: ${result.problems.join('; ')}`).join(' | ');
  return new FaberError('VERIFICATION_FAILED', `Backup verification failed - ${headline}`, {
    result: { ...data },
    suggestions,
  });
}
