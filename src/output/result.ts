import type { ErrorCode, FaberError } from './errors.ts';

/** The structured result every operation returns (the original's JSON response shape). */
export type OperationResult<T = Record<string, unknown>> = SuccessResult<T> | ErrorResult;

export interface SuccessResult<T = Record<string, unknown>> {
  status: 'success';
  operation: string;
  project?: string;
  environment?: string;
  result: T;
  message: string;
  warnings?: string[];
}

export interface ErrorResult {
  status: 'error';
  operation: string;
  project?: string;
  environment?: string;
  error: string;
  error_code: ErrorCode;
  result: Record<string, unknown>;
  recovery: { suggestions: string[] };
  /** Only with --verbose. */
  stack?: string;
}

export interface ResultScope {
  operation: string;
  project?: string | undefined;
  environment?: string | undefined;
}

function scopeFields(scope: ResultScope): Pick<SuccessResult, 'operation' | 'project' | 'environment'> {
  const fields: Pick<SuccessResult, 'operation' | 'project' | 'environment'> = { operation: scope.operation };
  if (scope.project) fields.project = scope.project;
  if (scope.environment) fields.environment = scope.environment;
  return fields;
}

export function success<T>(scope: ResultScope, result: T, message: string, warnings: string[] = []): SuccessResult<T> {
  return { status: 'success', ...scopeFields(scope), result, message, ...(warnings.length ? { warnings } : {}) };
}

export function failure(scope: ResultScope, error: FaberError, verbose = false): ErrorResult {
  const out: ErrorResult = {
    status: 'error',
    ...scopeFields(scope),
    error: error.message,
    error_code: error.code,
    result: error.result,
    recovery: { suggestions: error.suggestions },
  };
  if (verbose && error.stack) out.stack = error.stack;
  return out;
}
