import { FaberError } from '../output/errors.ts';
import type { OperationContext } from './context.ts';

export interface ConfirmationRequest {
  /** --yes was given. */
  yes: boolean | undefined;
  question: string;
  /** For a typed confirmation: the word the person must type (the database name). */
  expected?: string | undefined;
  /** The command to run again with --yes, shown when there is no terminal to ask. */
  command: string;
  /** Facts for the error result. */
  result?: Record<string, unknown>;
}

/**
 * Asks on a terminal; without one, only --yes lets the operation go on (CI never hangs on a
 * prompt nobody can answer).
 */
export async function requireConfirmation(ctx: OperationContext, request: ConfirmationRequest): Promise<void> {
  if (request.yes) return;
  if (ctx.interactive && ctx.confirm) {
    if (await ctx.confirm(request.question, request.expected)) return;
    throw new FaberError('CANCELLED', 'Cancelled at the confirmation prompt; nothing was changed', {
      result: request.result ?? {},
      suggestions: [`Run it again and confirm, or pass --yes: ${request.command} --yes`],
    });
  }
  throw new FaberError(
    'CONFIRMATION_REQUIRED',
    `${request.question} Confirmation is required and there is no terminal to ask`,
    {
      result: request.result ?? {},
      suggestions: [`Pass --yes to confirm (e.g. in CI): ${request.command} --yes`],
    },
  );
}
