import { FaberError, toFaberError } from '../output/errors.ts';
import { failure, type OperationResult, type ResultScope, type SuccessResult } from '../output/result.ts';
import { redactSecrets } from '../util/redact.ts';
import type { OperationContext } from './context.ts';

export const BANNER_TITLE = 'Backup Manager';

/** Secrets an operation learned (connection passwords) to scrub from anything it reports. */
export class SecretList {
  readonly values: string[] = [];
  add(secret: string | undefined): void {
    if (secret) this.values.push(secret);
  }
  redact(text: string): string {
    return redactSecrets(text, this.values);
  }
}

export interface OperationRun {
  signal: AbortSignal;
  secrets: SecretList;
}

/**
 * Runs an operation body: SIGINT/SIGTERM abort it (the body cleans up and we report CANCELLED),
 * anything thrown becomes an error result with its code and suggestions, secrets are scrubbed.
 */
export async function runOperation<T>(
  scope: ResultScope,
  ctx: OperationContext,
  body: (run: OperationRun) => Promise<SuccessResult<T>>,
): Promise<OperationResult<T>> {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => controller.abort(cancelled(undefined, scope, ` by ${signal}`));
  const onAbort = () => controller.abort(cancelled(undefined, scope));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (ctx.signal?.aborted) onAbort();
  else ctx.signal?.addEventListener('abort', onAbort, { once: true });
  const secrets = new SecretList();
  try {
    return await body({ signal: controller.signal, secrets });
  } catch (thrown) {
    const error = controller.signal.aborted ? cancelled(thrown, scope) : toFaberError(thrown);
    const safe = scrub(error, secrets);
    ctx.reporter.fail(BANNER_TITLE, safe.message, safe.suggestions, safe.code);
    return failure(scope, safe, ctx.verbose === true);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

function cancelled(thrown: unknown, scope: ResultScope, how = ''): FaberError {
  if (thrown instanceof FaberError && thrown.code === 'CANCELLED') return thrown;
  return new FaberError(
    'CANCELLED',
    `The ${scope.operation} was cancelled${how}; nothing was recorded and partial files were removed`,
    {
      ...(thrown === undefined ? {} : { cause: thrown }),
      suggestions: ['Run the target again when ready'],
    },
  );
}

function scrub(error: FaberError, secrets: SecretList): FaberError {
  const result = JSON.parse(secrets.redact(JSON.stringify(error.result))) as Record<string, unknown>;
  const suggestions =
    error.suggestions.length > 0 ? error.suggestions : ['Run again with --verbose to see where it failed'];
  const clean = new FaberError(error.code, secrets.redact(error.message), {
    result,
    suggestions: suggestions.map((suggestion) => secrets.redact(suggestion)),
  });
  if (error.stack) clean.stack = secrets.redact(error.stack);
  return clean;
}
