import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FaberError } from '../output/errors.ts';
import { closestName } from '../util/did-you-mean.ts';
import { findDuplicateKey } from './json-duplicates.ts';
import { describeJsonSyntaxProblem, findJsonSyntaxProblem } from './json-location.ts';
import { CONFIG_RELATIVE_PATH } from './paths.ts';
import { configSchema, type FaberConfig } from './schema.ts';

export { CONFIG_RELATIVE_PATH };

export interface LoadedConfig {
  config: FaberConfig;
  /** Absolute path of the file that was read. */
  path: string;
}

/**
 * The project's config if it has one, else the workspace's: a project's own file says more about it
 * than the shared one at the workspace root, which covers projects that have none.
 */
export async function loadConfig(workspaceRoot: string, projectRoot?: string): Promise<LoadedConfig> {
  const candidates = [
    projectRoot ? path.join(workspaceRoot, projectRoot, CONFIG_RELATIVE_PATH) : undefined,
    path.join(workspaceRoot, CONFIG_RELATIVE_PATH),
  ]
    .filter((candidate): candidate is string => candidate !== undefined)
    .filter((candidate, index, all) => all.indexOf(candidate) === index);
  for (const candidate of candidates) {
    const text = await readFile(candidate, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw new FaberError('CONFIG_INVALID', `Cannot read ${candidate}: ${error.message}`, { cause: error });
    });
    if (text !== undefined) return { config: parseConfig(text, candidate), path: candidate };
  }
  throw new FaberError('CONFIG_NOT_FOUND', `No faber-db config found (looked for ${candidates.join(' and ')})`, {
    result: { searched: candidates },
    suggestions: [
      `Create one with: nx g @faber-db/nx:configuration --project=<project>`,
      `Or write ${CONFIG_RELATIVE_PATH} by hand (see the README's configuration section)`,
    ],
  });
}

/** Parses and validates config text; every error names the file, the JSON path and what was expected. */
export function parseConfig(text: string, file: string): FaberConfig {
  const relative = path.relative(process.cwd(), file);
  const name = relative && !relative.startsWith('..') ? relative : file;
  if (text.charCodeAt(0) === 0xfeff) {
    throw invalid(`${name} starts with a byte-order mark (BOM)`, file, ['Save the file as UTF-8 without BOM']);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const problem = findJsonSyntaxProblem(text) ?? { line: 1, column: 1, reason: (error as Error).message };
    throw invalid(
      describeJsonSyntaxProblem(name, problem),
      file,
      ['Fix the JSON syntax there (a trailing comma or a missing quote is the usual cause)'],
      undefined,
      {
        line: problem.line,
        column: problem.column,
      },
    );
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate) {
    throw invalid(`${name}: ${duplicate} is defined twice`, file, [
      'Remove one of the two definitions: JSON keeps only the last, silently',
    ]);
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => describeIssue(issue));
    throw invalid(
      `${name} is invalid:\n  - ${problems.join('\n  - ')}`,
      file,
      [`Fix ${name} as the messages say; the JSON Schema (its "$schema") gives editors completion and checks`],
      problems,
    );
  }
  return parsed.data;
}

function invalid(
  message: string,
  file: string,
  suggestions: string[],
  problems?: string[],
  location?: { line: number; column: number },
): FaberError {
  return new FaberError('CONFIG_INVALID', message, {
    result: { config_file: file, ...location, ...(problems ? { problems } : {}) },
    suggestions,
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(root)';
  if (issue.code === 'unrecognized_keys') {
    const known = fieldsAt(configSchema, issue.path);
    const named = issue.keys.map((key) => {
      const guess = closestName(key, known);
      return `"${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`;
    });
    return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${named.join(', ')}${known.length ? `; known: ${known.join(', ')}` : ''}`;
  }
  return `${where}: ${issue.message}`;
}

/** The field names the config schema allows at a JSON path (environments.<name> → an environment's fields). */
function fieldsAt(schema: z.ZodType, at: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const key of at) current = current === undefined ? undefined : child(unwrapped(current), key);
  const object = current === undefined ? undefined : unwrapped(current);
  return object instanceof z.ZodObject ? Object.keys(object.shape) : [];
}

function child(schema: z.ZodType, key: PropertyKey): z.ZodType | undefined {
  if (schema instanceof z.ZodObject) return (schema.shape as Record<string, z.ZodType>)[String(key)];
  if (schema instanceof z.ZodRecord) return schema.valueType as z.ZodType;
  return undefined;
}

function unwrapped(schema: z.ZodType): z.ZodType {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault) return unwrapped(schema.unwrap() as z.ZodType);
  return schema;
}
