import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import {
  createNodesFromFiles,
  type CreateNodes,
  type CreateNodesContext,
  type CreateNodesResult,
  type TargetConfiguration,
} from '@nx/devkit';
import { CONFIG_RELATIVE_PATH } from '../config/load.ts';
import { createBackupTargets, TARGET_DESCRIPTIONS } from '../nx/targets.ts';

/**
 * Inferred targets: every project with its own `.fractary/plugins/faber-db/config.json` gets the
 * backup targets, one configuration per environment of that file. A workspace-level config (at the
 * workspace root) infers nothing: which projects share it is not written anywhere, so those
 * projects get explicit targets from the configuration generator. Wiring migrate to
 * pre-migrate-backup is left to the generator too, since the migrate target belongs to someone else.
 */

// No options yet; the type is there so nx.json `options: {}` has a meaning.
export type FaberDbPluginOptions = Record<string, never>;

const CONFIG_GLOB = `**/${CONFIG_RELATIVE_PATH}`;
const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9_-]*$/i;
const PROJECT_FILES = ['project.json', 'package.json'];

export function projectRootOf(configFile: string): string {
  const normalized = configFile.replaceAll('\\', '/');
  const root = normalized.slice(0, normalized.length - CONFIG_RELATIVE_PATH.length);
  return posix.normalize(root === '' ? '.' : root).replace(/\/$/, '');
}

function isProjectDirectory(workspaceRoot: string, projectRoot: string): boolean {
  return PROJECT_FILES.some((file) => existsSync(join(workspaceRoot, projectRoot, file)));
}

/** The environment names of a config file; only as much validation as the targets need. */
export function readEnvironmentNames(configFile: string, workspaceRoot: string): string[] {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(workspaceRoot, configFile), 'utf-8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`faber-db: ${configFile} is not valid JSON (${reason}); its backup targets cannot be inferred.`);
  }
  const environments = (config as { environments?: unknown } | null)?.environments;
  if (typeof environments !== 'object' || environments === null || Array.isArray(environments)) {
    throw new Error(`faber-db: ${configFile} has no "environments" object; its backup targets cannot be inferred.`);
  }
  const names = Object.keys(environments);
  const invalid = names.filter((name) => !ENVIRONMENT_NAME.test(name));
  if (names.length === 0 || invalid.length > 0) {
    throw new Error(
      `faber-db: ${configFile} must name at least one environment of letters, digits, - and _` +
        (invalid.length > 0 ? ` (invalid: ${invalid.map((name) => JSON.stringify(name)).join(', ')})` : '') +
        '.',
    );
  }
  return names;
}

function describedTargets(environments: readonly string[]): Record<string, TargetConfiguration> {
  const targets = createBackupTargets({ environments });
  for (const [name, target] of Object.entries(targets)) {
    const description = TARGET_DESCRIPTIONS[name];
    if (description !== undefined) target.metadata = { description, technologies: ['faber-db'] };
  }
  return targets;
}

export function createNodesForConfigFile(
  configFile: string,
  _options: FaberDbPluginOptions | undefined,
  context: CreateNodesContext,
): CreateNodesResult {
  const projectRoot = projectRootOf(configFile);
  if (projectRoot === '.' || !isProjectDirectory(context.workspaceRoot, projectRoot)) return {};
  const environments = readEnvironmentNames(configFile, context.workspaceRoot);
  return { projects: { [projectRoot]: { targets: describedTargets(environments) } } };
}

export const createNodes: CreateNodes<FaberDbPluginOptions> = [
  CONFIG_GLOB,
  (configFiles, options, context) => createNodesFromFiles(createNodesForConfigFile, configFiles, options ?? {}, context),
];

/** Nx 21 and 22 read this name; Nx 24 reads `createNodes` first. */
export const createNodesV2 = createNodes;
