import path from 'node:path';
import type { MigrationState } from '../catalog/schema.ts';
import type { DatabaseHandler } from '../handlers/handler.ts';
import { pendingMigrations, type PendingMigrations } from '../migrations/pending.ts';
import type { OperationContext, Workspace } from './context.ts';
import { migrationLookup } from './load-backup.ts';

/** The project's own directory, where its migrations folder is looked up. */
function projectDirectory(ctx: OperationContext): string {
  return path.resolve(ctx.workspaceRoot, ctx.projectRoot ?? '.');
}

export function pendingFor(
  state: MigrationState,
  workspace: Workspace,
  ctx: OperationContext,
): Promise<PendingMigrations> {
  return pendingMigrations(state, projectDirectory(ctx), workspace.config.migrations.directory);
}

/** The state as the catalog records it for a pre-migration backup: applied and pending side by side. */
export function withPending(state: MigrationState, pending: PendingMigrations): MigrationState {
  return pending.known ? { ...state, pending: pending.pending } : { ...state, pending_unknown_reason: pending.reason };
}

export function describeMigrations(state: MigrationState): string {
  const last = state.last_migration ? ` (last: ${state.last_migration})` : '';
  const pending = state.pending ? `, ${state.pending.length} pending` : '';
  return `${state.applied_count} applied${last}${pending}`;
}

/**
 * Why the pre-migrate backup may be skipped ("nothing to migrate: 4 applied, 0 pending"), or
 * undefined when a migration is pending or when it cannot be told (then it backs up).
 */
export async function nothingToMigrate(
  handler: DatabaseHandler,
  workspace: Workspace,
  ctx: OperationContext,
): Promise<string | undefined> {
  const state = await handler.migrationState(handler.live, migrationLookup(workspace.config));
  const pending = await pendingFor(state, workspace, ctx);
  if (!pending.known) {
    ctx.reporter.step(`Cannot tell which migrations are pending (${pending.reason}); backing up`);
    return undefined;
  }
  if (pending.pending.length > 0) {
    ctx.reporter.step(
      `Migrations to run: ${pending.pending.length} pending (${pending.pending.join(', ')}), ${state.applied_count} applied`,
    );
    return undefined;
  }
  return `nothing to migrate: ${state.applied_count} applied, 0 pending`;
}
