import { getProjects, joinPathFragments, logger, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import {
  PLUGIN_ENTRY,
  TARGET_EXECUTORS,
  TARGET_NAME_OPTIONS,
  TARGET_NAMES,
  type FaberDbPluginOptions,
} from '../../src/nx/targets.ts';

function inferenceDisabled(tree: Tree): boolean {
  return process.env['NX_ADD_PLUGINS'] === 'false' || readNxJson(tree)?.useInferencePlugins === false;
}

export function isPluginRegistered(tree: Tree): boolean {
  const plugins = readNxJson(tree)?.plugins ?? [];
  return plugins.some((entry) => (typeof entry === 'string' ? entry : entry.plugin) === PLUGIN_ENTRY);
}

/**
 * Adds the inferred-targets plugin to nx.json `plugins` once, unless the workspace opted out of
 * inference plugins. Returns whether nx.json changed.
 */
export function registerPlugin(tree: Tree): boolean {
  if (isPluginRegistered(tree)) return false;
  if (inferenceDisabled(tree)) {
    logger.info(`Inference plugins are turned off in this workspace; ${PLUGIN_ENTRY} was not added to nx.json.`);
    return false;
  }
  const nxJson = readNxJson(tree) ?? {};
  nxJson.plugins = [...(nxJson.plugins ?? []), { plugin: PLUGIN_ENTRY, options: targetNamesFreeOfClashes(tree) }];
  updateNxJson(tree, nxJson);
  return true;
}

/**
 * Plugin options that rename an inferred target where some project already has a target of that
 * name running something else (a `backup` npm script, say): `db-backup`, else `faber-db-backup`.
 */
export function targetNamesFreeOfClashes(tree: Tree): FaberDbPluginOptions {
  const taken = foreignTargetNames(tree);
  const options: FaberDbPluginOptions = {};
  for (const [name, option] of Object.entries(TARGET_NAME_OPTIONS)) {
    if (!taken.has(name)) continue;
    const free = [`db-${name}`, `faber-db-${name}`].find((candidate) => !taken.has(candidate));
    if (!free) continue;
    options[option] = free;
    logger.info(
      `Some project already has a "${name}" target: the inferred one is named "${free}" (nx.json plugin option ${option}).`,
    );
  }
  return options;
}

/** Target names of the workspace's projects that are not this plugin's (project.json targets and npm scripts). */
function foreignTargetNames(tree: Tree): Set<string> {
  const ours = new Set<string>(Object.values(TARGET_EXECUTORS));
  const names = new Set<string>();
  for (const [, project] of getProjects(tree)) {
    for (const [name, target] of Object.entries(project.targets ?? {}))
      if (!target.executor || !ours.has(target.executor)) names.add(name);
    const packageJson = joinPathFragments(project.root, 'package.json');
    if (!tree.exists(packageJson)) continue;
    const scripts = (JSON.parse(tree.read(packageJson, 'utf-8') ?? '{}') as { scripts?: Record<string, unknown> })
      .scripts;
    for (const name of Object.keys(scripts ?? {})) names.add(name);
  }
  return names;
}

function turnsCachingOn(value: unknown): boolean {
  const entries: unknown[] = Array.isArray(value) ? value : [value];
  return entries.some(
    (entry) => typeof entry === 'object' && entry !== null && 'cache' in entry && entry.cache === true,
  );
}

/**
 * targetDefaults outrank inferred targets, so `cache: true` there would make a backup a replay of
 * an old log. Explicit targets in project.json outrank targetDefaults and keep `cache: false`.
 */
export function warnAboutCachedBackupTargets(tree: Tree): void {
  const ours = new Set<string>([...TARGET_NAMES, ...Object.values(TARGET_EXECUTORS)]);
  const keys = Object.entries(readNxJson(tree)?.targetDefaults ?? {})
    .filter(([key, value]) => ours.has(key) && turnsCachingOn(value))
    .map(([key]) => key);
  if (keys.length === 0) return;
  logger.warn(
    `nx.json targetDefaults turn caching on for ${keys.map((key) => `"${key}"`).join(', ')}. A cached backup is a backup that never ran, ` +
      `and inferred targets take their cache setting from targetDefaults: remove "cache": true there.`,
  );
}
