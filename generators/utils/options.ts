import { FaberError, isFaberError } from '../../src/output/errors.ts';
import { rejectUnknownOptions } from '../../src/operations/options.ts';

/**
 * The option names of a generator, checked against its generated option type in both directions
 * (`satisfies Record<keyof Options, true>`), so the list cannot drift from schema.json.
 */
export type OptionNames<Options> = Record<keyof Options, true>;

/**
 * Nx passes options its schema does not know on to the generator (schema.json leaves
 * additionalProperties open so they get here): refuse them before the Tree is touched.
 */
export function rejectUnknownGeneratorOptions<Options>(
  options: unknown,
  names: OptionNames<Options>,
  generator: string,
): void {
  try {
    rejectUnknownOptions(options, Object.keys(names), generator, 'generator');
  } catch (error) {
    throw isFaberError(error) ? withDetailsInMessage(error) : error;
  }
}

/** Nx prints only the message of a generator's error: put the code and the suggestions in it. */
export function withDetailsInMessage(error: FaberError): FaberError {
  const lines = [`${error.code}: ${error.message}`, ...error.suggestions.map((suggestion) => `  • ${suggestion}`)];
  return new FaberError(error.code, lines.join('\n'), {
    result: error.result,
    suggestions: error.suggestions,
    cause: error,
  });
}
