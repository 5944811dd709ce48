import type { OperationResult } from '../../src/output/result.ts';

/** The result data of an operation that must have succeeded (else the test fails with its error). */
export function succeeded<T>(result: OperationResult<T>): T {
  if (result.status !== 'success') throw new Error(`${result.operation} failed: ${result.error_code} ${result.error}`);
  return result.result;
}
