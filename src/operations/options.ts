import { z } from 'zod';
import { FaberError } from '../output/errors.ts';
import { closestName } from '../util/did-you-mean.ts';

/**
 * Executor options have one source: the zod shapes in src/operations/*-options.ts. They check
 * options at run time, and scripts/generate.ts writes each executors/<name>/schema.json (and from
 * it the option types) from them. Descriptions and Nx's extensions (x-priority) live in `.meta()`.
 */
export interface ExecutorOptionsDefinition {
  /** The executor's folder and name in executors.json. */
  executor: string;
  /** The generated option type's name. */
  title: string;
  description: string;
  /** The operation's own options (without the output options every executor shares). */
  shape: z.ZodRawShape;
}

/** Options every executor takes for its output; the executor handles them, the operation never sees them. */
export const outputOptionsShape = {
  json: z
    .boolean()
    .optional()
    .meta({ default: false, description: 'Print the result object alone, as one line of JSON.' }),
  outputFile: z.string().min(1).optional().meta({
    description: 'Also write the JSON result to this file (relative to the workspace root), on success and on failure.',
  }),
  verbose: z.boolean().optional().meta({ default: false, description: 'Show stack traces of errors.' }),
};

export const OUTPUT_OPTION_NAMES = Object.keys(outputOptionsShape) as Array<keyof typeof outputOptionsShape>;

/** The `environment` option; `everyWhenOmitted` for the executors that then work on all environments. */
export function environmentOption(executor: string, everyWhenOmitted = false) {
  const omitted = everyWhenOmitted ? ' Without one, every environment of the project.' : '';
  return z
    .string()
    .min(1)
    .optional()
    .meta({
      description: `Environment from config.json (dev, staging, production, ...). Defaults to the Nx configuration name (\`nx run app:${executor}:production\`).${omitted}`,
      'x-priority': 'important',
    });
}

/** Yes/no flags default to false in the schema Nx reads. */
export function flag(description: string, priority?: 'important') {
  return z
    .boolean()
    .optional()
    .meta({ default: false, description, ...(priority ? { 'x-priority': priority } : {}) });
}

/**
 * Options arrive from the command line as well as from code: check them like config, and name
 * the offending option the way it is typed (`--limit`). An unknown option is refused before
 * anything happens: a typo (`--form=<id>`) must not turn into the default (the newest backup).
 */
export function parseOptions<S extends z.ZodObject>(schema: S, options: unknown, target: string): z.output<S> {
  // The output options are the executor's; the operation accepts and ignores them.
  rejectUnknownOptions(options, [...Object.keys(schema.shape), ...OUTPUT_OPTION_NAMES], target);
  const parsed = schema.safeParse(options);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `--${issue.path.join('.') || 'options'}: ${issue.message}`);
  throw new FaberError('INVALID_OPTION', `Invalid option${problems.length > 1 ? 's' : ''}: ${problems.join('; ')}`, {
    result: { problems },
    suggestions: [`See the README for the ${target} executor options, or run with --help`],
  });
}

/**
 * Refuses options outside `known` with INVALID_OPTION and the likely intended name. Nx puts
 * positional arguments in `_`. Shared by executors (through parseOptions) and generators.
 */
export function rejectUnknownOptions(
  options: unknown,
  known: readonly string[],
  target: string,
  kind = 'executor',
): void {
  if (typeof options !== 'object' || options === null) return;
  const record = options as Record<string, unknown>;
  const positional = Array.isArray(record['_']) ? record['_'].map(String) : [];
  const unknown = Object.keys(record).filter(
    (name) => name !== '_' && record[name] !== undefined && !known.includes(name),
  );
  if (unknown.length === 0 && positional.length === 0) return;
  const problems = [
    ...unknown.map((name) => `unknown option --${name}`),
    ...positional.map((value) => `unexpected argument "${value}" (options are given as --name=value)`),
  ];
  const guesses = unknown.flatMap((name) => {
    const guess = closestName(name, known);
    return guess ? [`Did you mean \`--${guess}\` instead of \`--${name}\`?`] : [];
  });
  throw new FaberError(
    'INVALID_OPTION',
    `${capitalized(problems.join('; '))} for the ${target} ${kind}; nothing was done`,
    {
      result: { unknown_options: unknown, unexpected_arguments: positional, known_options: [...known] },
      suggestions: [...guesses, `The ${target} ${kind} takes: ${known.map((name) => `--${name}`).join(', ')}`],
    },
  );
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
