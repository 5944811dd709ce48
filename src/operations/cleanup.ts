import dayjs from 'dayjs';
import type { Catalog } from '../catalog/catalog.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { humanBytes } from '../output/format.ts';
import { success, type OperationResult, type ResultScope, type SuccessResult } from '../output/result.ts';
import {
  planCleanup,
  type CleanupPlan,
  type CleanupPolicy,
  type KeptEntry,
  type PlannedDeletion,
} from '../retention/plan.ts';
import { requireConfirmation } from './confirm.ts';
import { openCatalogWorkspace, type CatalogWorkspace, type OperationContext } from './context.ts';
import { applyFileCheck, verifyEntryFile } from './load-backup.ts';
import { parseOptions } from './options.ts';
import { cleanupOptionsSchema, type CleanupBackupsOptions } from './cleanup-options.ts';
import { findOrphans, removeOrphanFile, type Orphan, type OrphanKind } from './orphans.ts';
import { BANNER_TITLE, runOperation, type OperationRun } from './run.ts';
import { backupFileOf, backupKey, inScope, readEntries, type BackupScope } from './select.ts';
import { SAFETY_BACKUP_MIN_DAYS } from '../config/environment.ts';
import { currentTime } from './clock.ts';

export type { CleanupBackupsOptions } from './cleanup-options.ts';

export interface CleanupItem {
  backup_id: string;
  environment: string;
  created_at: string;
  expires_at: string;
  size_bytes: number;
  label: string | null;
  /** The planner's reason code (expired, older-than, pinned, min-keep, ...). */
  reason: string;
  /** The same, for people. */
  why: string;
}

export interface OrphanReport {
  kind: OrphanKind;
  path: string;
  backup_id: string | null;
  environment: string;
  action: 'reported' | 'repaired' | 'held';
  detail: string;
}

export interface CleanupResultData {
  dry_run: boolean;
  deleted: CleanupItem[];
  kept: CleanupItem[];
  freed_bytes: number;
  freed_human: string;
  orphans: OrphanReport[];
  /** Files that could not be deleted (their entries are gone: the next run reports them as orphans). */
  failed_deletions: string[];
}

/** Deletes expired backups (retention rules in src/retention/plan.ts) and reports or repairs orphans. */
export async function cleanupBackups(
  rawOptions: CleanupBackupsOptions,
  ctx: OperationContext,
): Promise<OperationResult<CleanupResultData>> {
  const scope = { operation: 'cleanup-backups', project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment ?? 'all',
    Operation: 'cleanup-backups',
    Mode: rawOptions.dryRun ? 'dry run (nothing is changed)' : undefined,
  });
  return runOperation<CleanupResultData>(scope, ctx, async (run) => {
    const options = parseOptions(cleanupOptionsSchema, rawOptions, 'cleanup-backups');
    const workspace = await openCatalogWorkspace(ctx, options.environment);
    const survey = await surveyBackups(workspace, options, ctx);
    reportPlan(survey.preview, survey.policy, ctx);
    if (options.dryRun) return dryRunResult(scope, survey, ctx);
    await confirmProtectedDeletions(survey.preview, workspace, options, ctx, survey.backupScope);
    return await applyCleanup(scope, survey, workspace, options, ctx, run);
  });
}

/** What a cleanup run finds before it changes anything. */
interface CleanupSurvey {
  backupScope: BackupScope;
  /** Catalog warnings (a rebuilt catalog, unusable manifests), already shown. */
  warnings: string[];
  orphans: Orphan[];
  /** Entries whose file is gone. */
  missingIds: Set<string>;
  policy: CleanupPolicy;
  /** The plan as shown to the user (and confirmed); the commit re-plans under the lock. */
  preview: CleanupPlan;
}

async function surveyBackups(
  workspace: CatalogWorkspace,
  options: CleanupBackupsOptions,
  ctx: OperationContext,
): Promise<CleanupSurvey> {
  const backupScope = { project: ctx.projectName, environment: workspace.environment?.name };
  const { entries, warnings } = await readEntries(workspace.catalog, ctx);
  // Refuse the whole run if any entry in scope names a path outside the backup directory.
  for (const entry of entries) if (inScope(entry, backupScope)) backupKey(workspace.catalog.storage, entry);
  const orphans = await findOrphans({ entries, scope: backupScope, storage: workspace.catalog.storage });
  const missingIds = new Set(
    orphans.filter((orphan) => orphan.kind === 'entry-without-file').map((orphan) => orphan.backupId ?? ''),
  );
  const policy = cleanupPolicy(workspace, options, ctx, backupScope);
  const preview = planCleanup(withMissingStatus(entries, missingIds), policy);
  return { backupScope, warnings, orphans, missingIds, policy, preview };
}

function dryRunResult(
  scope: ResultScope,
  survey: CleanupSurvey,
  ctx: OperationContext,
): SuccessResult<CleanupResultData> {
  const { preview, orphans } = survey;
  const orphanReports = reportOrphans(orphans, 'dry-run', ctx, survey.backupScope);
  const data = resultData(true, preview.delete, preview.keep, survey.policy, orphanReports, []);
  ctx.reporter.complete(BANNER_TITLE, {
    'Would delete': `${data.deleted.length} (${humanBytes(sumSizes(preview.delete))})`,
    Kept: String(data.kept.length),
    Orphans: String(orphans.length),
    Result: 'dry run: nothing was changed',
  });
  return success(
    scope,
    data,
    `Dry run: ${data.deleted.length} backup${data.deleted.length === 1 ? '' : 's'} would be deleted`,
    survey.warnings,
  );
}

/** Deletes what the confirmed plan names (re-planned under the lock) and, with --yes, repairs the orphans that are safe to touch. */
async function applyCleanup(
  scope: ResultScope,
  survey: CleanupSurvey,
  workspace: CatalogWorkspace,
  options: CleanupBackupsOptions,
  ctx: OperationContext,
  run: OperationRun,
): Promise<SuccessResult<CleanupResultData>> {
  const { orphans } = survey;
  const repairable = options.yes ? orphans.filter((orphan) => orphan.hold === undefined) : [];
  const readd = await verifiedForReadding(repairable, workspace.catalog, ctx, run);
  const committed = await commitCleanup(workspace.catalog, {
    policy: survey.policy,
    previewIds: new Set(survey.preview.delete.map((deletion) => deletion.entry.backup_id)),
    missingIds: survey.missingIds,
    removeMissing: options.yes === true,
    readd,
  });
  const failed = await deleteBackupFiles(
    committed.deleted.map((deletion) => deletion.entry),
    workspace.catalog,
    ctx,
  );
  failed.push(...(await removeOrphanFiles(repairable, workspace, ctx)));
  const orphanReports = reportOrphans(orphans, options.yes ? 'repair' : 'report', ctx, survey.backupScope);
  const data = resultData(false, committed.deleted, committed.kept, survey.policy, orphanReports, failed);
  ctx.reporter.complete(BANNER_TITLE, {
    Environment: workspace.environment?.name ?? 'all',
    Deleted: `${data.deleted.length} backup${data.deleted.length === 1 ? '' : 's'} (${data.freed_human} freed)`,
    Kept: String(data.kept.length),
    Orphans: orphans.length
      ? `${orphans.length} (${options.yes ? 'repaired where safe' : 'reported; --yes repairs them'})`
      : 'none',
  });
  const allWarnings = survey.warnings.concat(
    failed.map((file) => `Could not delete ${file}; the next cleanup-backups run reports it as an orphan`),
  );
  return success(
    scope,
    data,
    `Cleanup finished: ${data.deleted.length} backup${data.deleted.length === 1 ? '' : 's'} deleted`,
    allWarnings,
  );
}

function cleanupPolicy(
  workspace: CatalogWorkspace,
  options: CleanupBackupsOptions,
  ctx: OperationContext,
  scope: BackupScope,
): CleanupPolicy {
  return {
    now: dayjs(currentTime(ctx)),
    project: scope.project,
    ...(scope.environment === undefined ? {} : { environment: scope.environment }),
    ...(options.olderThan === undefined ? {} : { olderThanDays: options.olderThan }),
    protectedLabels: workspace.config.backup.protected_labels,
    minKeep: workspace.config.backup.min_keep,
  };
}

/** An entry whose file is gone must not count as a verified backup for min_keep or "newest verified". */
function withMissingStatus(entries: readonly BackupEntry[], missingIds: ReadonlySet<string>): BackupEntry[] {
  return entries.map((entry) => (missingIds.has(entry.backup_id) ? { ...entry, status: 'missing' } : entry));
}

async function confirmProtectedDeletions(
  plan: CleanupPlan,
  workspace: CatalogWorkspace,
  options: CleanupBackupsOptions,
  ctx: OperationContext,
  scope: BackupScope,
): Promise<void> {
  const protectedNames = workspace.config.safety.protected_environments;
  const protectedDeletions = plan.delete.filter((deletion) => protectedNames.includes(deletion.entry.environment));
  if (protectedDeletions.length === 0) return;
  const environments = [...new Set(protectedDeletions.map((deletion) => deletion.entry.environment))].join(', ');
  const count = protectedDeletions.length;
  await requireConfirmation(ctx, {
    yes: options.yes,
    question: `Delete ${count} backup${count === 1 ? '' : 's'} (${humanBytes(sumSizes(protectedDeletions))}) of the protected environment ${environments}?`,
    command: `nx run ${scope.project}:cleanup-backups${scope.environment ? `:${scope.environment}` : ''}${options.olderThan === undefined ? '' : ` --olderThan=${options.olderThan}`}`,
    result: { backups: protectedDeletions.map((deletion) => deletion.entry.backup_id), environments },
  });
}

export interface CommitInput {
  policy: CleanupPolicy;
  /** Only backups that were shown (and confirmed) are deleted, even if the fresh plan names more. */
  previewIds: ReadonlySet<string>;
  /** Entries whose file is gone. */
  missingIds: ReadonlySet<string>;
  /** Remove the entries whose file is gone (--yes). */
  removeMissing: boolean;
  /** Orphans with a manifest, verified, to put back in the catalog. */
  readd: BackupEntry[];
}

export interface CommitResult {
  deleted: PlannedDeletion[];
  kept: KeptEntry[];
  removedMissing: BackupEntry[];
  readded: BackupEntry[];
}

/**
 * Step one of a cleanup: the catalog, under its lock, with the plan made again on fresh entries
 * (another process may have added or verified backups since the preview). The catalog drops the
 * removed entries' manifests after saving. Files are deleted after this returns (step two), so a
 * crash in between leaves files that no entry points to — reported as orphans by the next run —
 * and never an entry that points to a deleted file.
 */
export async function commitCleanup(catalog: Catalog, input: CommitInput): Promise<CommitResult> {
  return catalog.update((entries) => {
    const byId = new Map(entries.map((entry) => [entry.backup_id, entry]));
    const plan = planCleanup(withMissingStatus(entries, input.missingIds), input.policy);
    const deleted = plan.delete
      .filter((deletion) => input.previewIds.has(deletion.entry.backup_id))
      .map((deletion) => ({ ...deletion, entry: byId.get(deletion.entry.backup_id) ?? deletion.entry }));
    const drop = new Set(deleted.map((deletion) => deletion.entry.backup_id));
    const removedMissing = input.removeMissing
      ? entries.filter((entry) => input.missingIds.has(entry.backup_id) && !drop.has(entry.backup_id))
      : [];
    for (const entry of removedMissing) drop.add(entry.backup_id);
    const remaining = entries.filter((entry) => !drop.has(entry.backup_id));
    const readded = input.readd.filter((entry) => !byId.has(entry.backup_id));
    entries.splice(0, entries.length, ...remaining, ...readded);
    return { deleted, kept: plan.keep.filter((kept) => !drop.has(kept.entry.backup_id)), removedMissing, readded };
  });
}

/** Step two: the files of the entries step one removed. Returns the ones that could not be deleted. */
export async function deleteBackupFiles(
  entries: readonly BackupEntry[],
  catalog: Catalog,
  ctx: OperationContext,
): Promise<string[]> {
  const failed: string[] = [];
  for (const entry of entries) {
    try {
      await catalog.storage.delete(backupKey(catalog.storage, entry));
      ctx.reporter.step(`Deleted ${entry.backup_id} (${humanBytes(entry.size_bytes)})`);
    } catch (error) {
      failed.push(entry.file_path);
      ctx.reporter.warn(`Could not delete ${entry.file_path}: ${(error as Error).message}`);
    }
  }
  return failed;
}

/** Orphans with a manifest go back into the catalog with the status a fresh check gives them. */
async function verifiedForReadding(
  orphans: readonly Orphan[],
  catalog: Catalog,
  ctx: OperationContext,
  run: OperationRun,
): Promise<BackupEntry[]> {
  const readd: BackupEntry[] = [];
  for (const orphan of orphans) {
    if (orphan.kind !== 'file-with-manifest' || !orphan.entry) continue;
    const entry = structuredClone(orphan.entry);
    const report = await verifyEntryFile(entry, await backupFileOf(catalog, entry), ctx.env, run.signal);
    if (run.signal.aborted) throw run.signal.reason;
    applyFileCheck(entry, report, currentTime(ctx));
    readd.push(entry);
  }
  return readd;
}

async function removeOrphanFiles(
  orphans: readonly Orphan[],
  workspace: CatalogWorkspace,
  ctx: OperationContext,
): Promise<string[]> {
  const deletable: ReadonlySet<OrphanKind> = new Set(['file-without-manifest', 'stale-manifest', 'leftover']);
  const failed: string[] = [];
  for (const orphan of orphans) {
    if (!deletable.has(orphan.kind)) continue;
    try {
      await removeOrphanFile(orphan, workspace.catalog.storage);
    } catch (error) {
      failed.push(orphan.location);
      ctx.reporter.warn(`Could not delete ${orphan.path}: ${(error as Error).message}`);
    }
  }
  return failed;
}

const ORPHAN_REPAIRS: Record<OrphanKind, string | undefined> = {
  'entry-without-file': 'catalog entry removed',
  'file-with-manifest': 're-added to the catalog from its manifest',
  'file-without-manifest': 'deleted',
  'stale-manifest': 'deleted',
  leftover: 'deleted',
  'invalid-manifest': undefined,
};

const ORPHAN_DESCRIPTIONS: Record<OrphanKind, string> = {
  'entry-without-file': 'catalog entry whose file is gone',
  'file-with-manifest': 'backup file with a manifest but no catalog entry',
  'file-without-manifest': 'backup file with no catalog entry and no manifest',
  'stale-manifest': 'manifest whose backup file is gone',
  leftover: 'leftover of an interrupted backup or write',
  'invalid-manifest': 'backup file whose manifest cannot be used',
};

function reportOrphans(
  orphans: readonly Orphan[],
  mode: 'dry-run' | 'report' | 'repair',
  ctx: OperationContext,
  scope: BackupScope,
): OrphanReport[] {
  const reports = orphans.map((orphan): OrphanReport => {
    const repair = ORPHAN_REPAIRS[orphan.kind];
    const held = orphan.hold !== undefined || repair === undefined;
    const action = mode === 'repair' ? (held ? 'held' : 'repaired') : 'reported';
    const outcome =
      action === 'repaired'
        ? repair
        : held
          ? `left alone: ${orphan.hold ?? 'needs a look by hand'}`
          : `--yes would: ${repair}`;
    return {
      kind: orphan.kind,
      path: orphan.location,
      backup_id: orphan.backupId,
      environment: orphan.environment,
      action,
      detail: `${ORPHAN_DESCRIPTIONS[orphan.kind]}; ${outcome}`,
    };
  });
  if (reports.length) ctx.reporter.step(`Orphans found: ${reports.length}`);
  for (const report of reports)
    ctx.reporter.info(`${report.action === 'repaired' ? '✓' : '!'} ${report.path}: ${report.detail}`);
  if (mode === 'report' && reports.some((report) => report.action === 'reported')) {
    ctx.reporter.info(
      `Repair them with: nx run ${scope.project}:cleanup-backups${scope.environment ? `:${scope.environment}` : ''} --yes`,
    );
  }
  return reports;
}

function reportPlan(plan: CleanupPlan, policy: CleanupPolicy, ctx: OperationContext): void {
  ctx.reporter.step(
    `Retention plan: delete ${plan.delete.length} (${humanBytes(sumSizes(plan.delete))}), keep ${plan.keep.length}`,
  );
  for (const deletion of plan.delete)
    ctx.reporter.info(
      `- ${deletion.entry.backup_id} (${deletion.entry.environment}): ${deletionWhy(deletion, policy)}`,
    );
  for (const kept of plan.keep)
    ctx.reporter.info(`= ${kept.entry.backup_id} (${kept.entry.environment}): kept, ${keptWhy(kept, policy)}`);
}

function deletionWhy(deletion: PlannedDeletion, policy: CleanupPolicy): string {
  if (deletion.reason === 'older-than') return `older than ${policy.olderThanDays} days`;
  return `expired ${deletion.entry.expires_at.slice(0, 10)}`;
}

function keptWhy(kept: KeptEntry, policy: CleanupPolicy): string {
  const entry = kept.entry;
  switch (kept.reason) {
    case 'not-expired':
      return policy.olderThanDays === undefined
        ? `expires ${entry.expires_at.slice(0, 10)}`
        : `younger than ${policy.olderThanDays} days`;
    case 'protected-label':
      return `protected label "${entry.label}"`;
    case 'pinned':
      return 'pinned';
    case 'young-safety-backup':
      return `safety backup (${entry.reason ?? entry.label}) younger than ${SAFETY_BACKUP_MIN_DAYS} days`;
    case 'newest-verified':
      return 'the newest verified backup';
    case 'min-keep':
      return `min_keep: ${policy.minKeep} verified backup${policy.minKeep === 1 ? '' : 's'} must remain`;
  }
}

function item(entry: BackupEntry, reason: string, why: string): CleanupItem {
  return {
    backup_id: entry.backup_id,
    environment: entry.environment,
    created_at: entry.created_at,
    expires_at: entry.expires_at,
    size_bytes: entry.size_bytes,
    label: entry.label,
    reason,
    why,
  };
}

function resultData(
  dryRun: boolean,
  deleted: PlannedDeletion[],
  kept: KeptEntry[],
  policy: CleanupPolicy,
  orphans: OrphanReport[],
  failed: string[],
): CleanupResultData {
  const freed = sumSizes(deleted.filter((deletion) => !failed.includes(deletion.entry.file_path)));
  return {
    dry_run: dryRun,
    deleted: deleted.map((deletion) => item(deletion.entry, deletion.reason, deletionWhy(deletion, policy))),
    kept: kept.map((entry) => item(entry.entry, entry.reason, keptWhy(entry, policy))),
    freed_bytes: freed,
    freed_human: humanBytes(freed),
    orphans,
    failed_deletions: failed,
  };
}

function sumSizes(items: ReadonlyArray<{ entry: BackupEntry }>): number {
  return items.reduce((sum, { entry }) => sum + entry.size_bytes, 0);
}
