import type { z } from 'zod';
import { FaberError } from '../output/errors.ts';

/**
 * Options arrive from the command line as well as from code: check them like config, and name
 * the offending option the way it is typed (`--limit`).
 */
export function parseOptions<S extends z.ZodType>(schema: S, options: unknown, target: string): z.output<S> {
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `--${issue.path.join('.') || 'options'}: ${issue.message}`);
  throw new FaberError('INVALID_OPTION', `Invalid option${problems.length > 1 ? 's' : ''}: ${problems.join('; ')}`, {
    result: { problems },
    suggestions: [`See the README for the ${target} executor options, or run with --help`],
  });
}
