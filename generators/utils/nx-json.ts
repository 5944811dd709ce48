import { logger, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import { PLUGIN_ENTRY } from '../../src/nx/targets.ts';

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
  nxJson.plugins = [...(nxJson.plugins ?? []), { plugin: PLUGIN_ENTRY, options: {} }];
  updateNxJson(tree, nxJson);
  return true;
}
