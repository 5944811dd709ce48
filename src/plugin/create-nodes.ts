import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { CreateNodesContext, CreateNodesResult, CreateNodesV2, TargetConfiguration } from '@nx/devkit';
import { describeJsonSyntaxProblem, findJsonSyntaxProblem } from '../config/json-location.ts';
import { ENVIRONMENT_NAME_PATTERN } from '../config/environment-name.ts';
import { CONFIG_RELATIVE_PATH } from '../config/paths.ts';
import {
  createBackupTargets,
  inferredTargetName,
  TARGET_DESCRIPTIONS,
  TARGET_EXAMPLES,
  TARGET_NAME_OPTIONS,
  type FaberDbPluginOptions,
} from '../nx/targets.ts';

/**
 * Inferred targets: every project with its own `.fractary/plugins/faber-db/config.json` gets the
 * backup targets, one configuration per environment of that file. A workspace-level config (at the
 * workspace root) infers nothing: which projects share it is not written anywhere, so those
 * projects get explicit targets from the configuration generator. Wiring migrate to
 * pre-migrate-backup is left to the generator too, since the migrate target belongs to someone else.
 *
 * This runs on every Nx command, so it imports nothing heavy (no zod, no @nx/devkit at run time)
 * and never fails the project graph: a broken config file costs its own project its
 * configurations, is reported once, and its targets fail with CONFIG_INVALID when run.
 */

export type { FaberDbPluginOptions } from '../nx/targets.ts';

const CONFIG_GLOB = `**/${CONFIG_RELATIVE_PATH}`;
const PROJECT_FILES = ['project.json', 'package.json'];

export function projectRootOf(configFile: string): string {
  const normalized = configFile.replaceAll('\\', '/');
  const root = normalized.slice(0, normalized.length - CONFIG_RELATIVE_PATH.length);
  return posix.normalize(root === '' ? '.' : root).replace(/\/$/, '');
}

function isProjectDirectory(workspaceRoot: string, projectRoot: string): boolean {
  return PROJECT_FILES.some((file) => existsSync(join(workspaceRoot, projectRoot, file)));
}

export interface EnvironmentNames {
  /** The usable environment names (each becomes an Nx configuration). */
  environments: string[];
  /** What is wrong with the file, when something is: the config's own checks say the rest at run time. */
  problem?: string;
}

/** The environment names of a config file; only as much validation as the targets need. */
export function readEnvironmentNames(configFile: string, workspaceRoot: string): EnvironmentNames {
  let text: string;
  try {
    text = readFileSync(join(workspaceRoot, configFile), 'utf-8');
  } catch (error) {
    return { environments: [], problem: `${configFile} cannot be read (${(error as Error).message})` };
  }
  const syntax = findJsonSyntaxProblem(text.replace(/^\uFEFF/, ''));
  if (syntax) return { environments: [], problem: describeJsonSyntaxProblem(configFile, syntax) };
  const environments = (JSON.parse(text.replace(/^\uFEFF/, '')) as { environments?: unknown } | null)?.environments;
  if (typeof environments !== 'object' || environments === null || Array.isArray(environments)) {
    return { environments: [], problem: `${configFile} has no "environments" object` };
  }
  const names = Object.keys(environments);
  const valid = names.filter((name) => ENVIRONMENT_NAME_PATTERN.test(name));
  if (names.length === 0) return { environments: [], problem: `${configFile} names no environment` };
  if (valid.length < names.length) {
    const invalid = names.filter((name) => !valid.includes(name)).map((name) => JSON.stringify(name));
    return {
      environments: valid,
      problem: `${configFile}: environment names are letters, digits, - and _ (invalid: ${invalid.join(', ')})`,
    };
  }
  return { environments: names };
}

/** The targets under the names the plugin options give them, with what Nx Console shows about each. */
function describedTargets(
  environments: readonly string[],
  options: FaberDbPluginOptions | undefined,
  projectName: string | undefined,
): Record<string, TargetConfiguration> {
  const named: Record<string, TargetConfiguration> = {};
  for (const [name, target] of Object.entries(createBackupTargets({ environments }))) {
    const finalName = isTargetName(name) ? inferredTargetName(name, options) : name;
    target.metadata = {
      description: TARGET_DESCRIPTIONS[name],
      technologies: ['faber-db'],
      ...(projectName
        ? {
            help: {
              command: `npx nx run ${projectName}:${finalName} --help`,
              example: { options: TARGET_EXAMPLES[name] ?? {} },
            },
          }
        : {}),
    };
    named[finalName] = target;
  }
  return named;
}

function isTargetName(name: string): name is keyof typeof TARGET_NAME_OPTIONS {
  return name in TARGET_NAME_OPTIONS;
}

/** The project's name as project.json or package.json gives it (for the help command). */
function projectNameOf(workspaceRoot: string, projectRoot: string): string | undefined {
  for (const file of PROJECT_FILES) {
    try {
      const name = (JSON.parse(readFileSync(join(workspaceRoot, projectRoot, file), 'utf-8')) as { name?: unknown })
        .name;
      if (typeof name === 'string' && name !== '') return name;
    } catch {
      // Absent or unreadable: Nx reports that file itself.
    }
  }
  return undefined;
}

/** Problems already reported by this process: the Nx daemon builds the graph many times. */
const reported = new Set<string>();

function reportOnce(problem: string): void {
  if (reported.has(problem)) return;
  reported.add(problem);
  process.stderr.write(
    `\n[@faber-db/nx] ${problem}.\n  The project's backup targets have no environment configurations until this is fixed; running one reports CONFIG_INVALID with the details.\n\n`,
  );
}

export function createNodesForConfigFile(
  configFile: string,
  options: FaberDbPluginOptions | undefined,
  context: CreateNodesContext,
): CreateNodesResult {
  const projectRoot = projectRootOf(configFile);
  if (projectRoot === '.' || !isProjectDirectory(context.workspaceRoot, projectRoot)) return {};
  const { environments, problem } = readEnvironmentNames(configFile, context.workspaceRoot);
  if (problem) reportOnce(problem);
  const targets = describedTargets(environments, options, projectNameOf(context.workspaceRoot, projectRoot));
  return { projects: { [projectRoot]: { targets } } };
}

export const createNodes: CreateNodesV2<FaberDbPluginOptions> = [
  CONFIG_GLOB,
  (configFiles, options, context) =>
    configFiles.map((file) => [file, createNodesForConfigFile(file, options ?? {}, context)] as const),
];

/** Nx 21 and 22 read this name; Nx 24 reads `createNodes` first. */
export const createNodesV2 = createNodes;
