import { success, type OperationResult } from '../output/result.ts';
import { openWorkspace, type OperationContext } from './context.ts';
import { parseOptions } from './options.ts';
import { pinOptionsSchema, type PinBackupOptions } from './pin-options.ts';
import { BANNER_TITLE, runOperation } from './run.ts';
import { findBackup, readEntries } from './select.ts';

export type { PinBackupOptions } from './pin-options.ts';

export interface PinResultData {
  backup_id: string;
  environment: string;
  pinned: boolean;
  /** False when the backup already was as asked. */
  changed: boolean;
}

/** Pins (or unpins) one backup: its catalog entry and manifest say `pinned`, and cleanup never deletes it. */
export async function pinBackup(
  rawOptions: PinBackupOptions,
  ctx: OperationContext,
): Promise<OperationResult<PinResultData>> {
  const operation = rawOptions.unpin ? 'unpin-backup' : 'pin-backup';
  const scope = { operation, project: ctx.projectName, environment: rawOptions.environment };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: rawOptions.environment,
    Operation: operation,
    Backup: rawOptions.backupId,
  });
  return runOperation<PinResultData>(scope, ctx, async () => {
    const options = parseOptions(pinOptionsSchema, rawOptions, 'pin-backup');
    const workspace = await openWorkspace(ctx, options.environment);
    const { entries } = await readEntries(workspace.catalog, ctx);
    const found = findBackup(
      entries,
      options.backupId,
      { project: ctx.projectName, environment: workspace.environment.name },
      'pin-backup',
    );
    const pinned = !options.unpin;
    const changed = found.pinned !== pinned;
    if (changed) await workspace.catalog.patch(found.backup_id, (entry) => ({ ...entry, pinned }));
    const state = pinned ? 'pinned: cleanup never deletes it' : 'unpinned: cleanup may delete it once it expires';
    ctx.reporter.step(`${found.backup_id} ${changed ? 'is now' : 'already was'} ${state}`);
    ctx.reporter.complete(BANNER_TITLE, {
      Environment: found.environment,
      Backup: found.backup_id,
      Pinned: pinned ? 'yes' : 'no',
    });
    return success(
      scope,
      { backup_id: found.backup_id, environment: found.environment, pinned, changed },
      `Backup ${found.backup_id} ${pinned ? 'pinned' : 'unpinned'}`,
    );
  });
}
