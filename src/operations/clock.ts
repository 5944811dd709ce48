import type { OperationContext } from './context.ts';

/** The time for an operation: the context's clock when one is injected (tests travel in time), else the system's. */
export function currentTime(ctx: Pick<OperationContext, 'now'>): Date {
  return ctx.now?.() ?? new Date();
}
