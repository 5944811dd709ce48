import type { BackupEntry } from '../catalog/schema.ts';
import { describeRecipients } from '../config/age-recipients.ts';
import { humanBytes } from '../output/format.ts';
import { success, type OperationResult } from '../output/result.ts';
import { openCatalogWorkspace, type OperationContext } from './context.ts';
import { parseOptions } from './options.ts';
import { listOptionsSchema, type ListBackupsOptions } from './list-options.ts';
import { BANNER_TITLE, runOperation } from './run.ts';
import { readEntries, type BackupScope } from './select.ts';

export type { ListBackupsOptions } from './list-options.ts';

/** A catalog entry as list-backups returns it (the original's fields plus conveniences). */
export type ListedBackup = BackupEntry & { size_human: string; migrations_count: number; encrypted: boolean };

export interface ListResultData {
  backups: ListedBackup[];
  /** Backups of the project (and environment) matching the status filter, before --limit. */
  total: number;
}

/**
 * Lists the project's backups from the catalog alone: no file system call per entry, so a
 * catalog of thousands of backups lists at the speed of reading one JSON file.
 */
export async function listBackups(
  rawOptions: ListBackupsOptions,
  ctx: OperationContext,
): Promise<OperationResult<ListResultData>> {
  const scope = { operation: 'list-backups', project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment ?? 'all',
    Operation: 'list-backups',
  });
  return runOperation<ListResultData>(scope, ctx, async () => {
    const options = parseOptions(listOptionsSchema, rawOptions, 'list-backups');
    const workspace = await openCatalogWorkspace(ctx, options.environment);
    const { entries, warnings } = await readEntries(workspace.catalog, ctx);
    const matching = selectEntries(
      entries,
      { project: ctx.projectName, environment: workspace.environment?.name },
      options,
    );
    const shown = options.limit === undefined ? matching : matching.slice(0, options.limit);
    const backups = shown.map(listed);
    ctx.reporter.step(
      `Catalog read: ${matching.length} matching backup${matching.length === 1 ? '' : 's'}${options.status ? ` with status ${options.status}` : ''}`,
    );
    if (backups.length === 0) {
      ctx.reporter.info(
        `No backups. Take one: nx run ${ctx.projectName}:backup${workspace.environment ? `:${workspace.environment.name}` : ''}`,
      );
    } else {
      for (const line of renderTable(backups)) ctx.reporter.info(line);
    }
    ctx.reporter.complete(BANNER_TITLE, {
      Environment: workspace.environment?.name ?? 'all',
      Shown: backups.length < matching.length ? `${backups.length} of ${matching.length}` : String(backups.length),
    });
    return success(
      scope,
      { backups, total: matching.length },
      `${backups.length} backup${backups.length === 1 ? '' : 's'} listed`,
      warnings,
    );
  });
}

function selectEntries(entries: BackupEntry[], scope: BackupScope, options: ListBackupsOptions): BackupEntry[] {
  const matching = entries.filter(
    (entry) =>
      entry.project === scope.project &&
      (scope.environment === undefined || entry.environment === scope.environment) &&
      (options.status === undefined || entry.status === options.status),
  );
  // The catalog is kept oldest first.
  return options.sort === 'asc' ? matching : matching.reverse();
}

function listed(entry: BackupEntry): ListedBackup {
  return {
    ...entry,
    size_human: humanBytes(entry.size_bytes),
    migrations_count: entry.migrations.applied_count,
    encrypted: entry.encryption !== undefined,
  };
}

const COLUMNS: Array<[string, (backup: ListedBackup) => string]> = [
  ['ID', (backup) => backup.backup_id],
  ['CREATED (UTC)', (backup) => `${backup.created_at.slice(0, 10)} ${backup.created_at.slice(11, 16)}`],
  ['SIZE', (backup) => backup.size_human],
  ['ENV', (backup) => backup.environment],
  // A backup of another database filed under the environment (a pre-restore safety backup of a target).
  [
    'DATABASE',
    (backup) =>
      backup.source?.environment_database === false ? `${backup.database_name} (other)` : backup.database_name,
  ],
  ['LABEL', (backup) => backup.label ?? '-'],
  ['REASON', (backup) => backup.reason ?? '-'],
  [
    'MIGRATIONS',
    (backup) =>
      `${backup.migrations_count}${backup.migrations.pending?.length ? ` +${backup.migrations.pending.length} pending` : ''}`,
  ],
  ['VERIFIED', verifiedCell],
  ['EXPIRES', (backup) => (backup.pinned ? 'pinned' : backup.expires_at.slice(0, 10))],
];
/** Shown only when some listed backup is encrypted: which recipients can decrypt it (fingerprints). */
const ENCRYPTION_COLUMN: [string, (backup: ListedBackup) => string] = [
  'ENCRYPTED FOR',
  (backup) => (backup.encryption ? describeRecipients(backup.encryption.recipients) : '-'),
];

function verifiedCell(backup: ListedBackup): string {
  if (backup.status !== 'valid') return `✗ ${backup.status}`;
  const at = backup.verification.verified_at;
  if (!at) return '-';
  return `✓ ${at.slice(0, 10)}${backup.verification.restore_test?.status === 'passed' ? ' (restore drill)' : ''}`;
}

/** Plain columns padded to the widest cell, so the output reads in a terminal and in a CI log. */
export function renderTable(backups: ListedBackup[]): string[] {
  const columns = backups.some((backup) => backup.encrypted) ? [...COLUMNS, ENCRYPTION_COLUMN] : COLUMNS;
  const rows = backups.map((backup) => columns.map(([, cell]) => cell(backup)));
  const headers = columns.map(([header]) => header);
  const widths = headers.map((header) => header.length);
  for (const row of rows) row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  const line = (cells: string[]) =>
    cells.map((cell, index) => (index === cells.length - 1 ? cell : cell.padEnd(widths[index] ?? 0))).join('  ');
  return [line(headers), ...rows.map(line)];
}
