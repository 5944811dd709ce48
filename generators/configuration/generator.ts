import { formatFiles, type Tree } from '@nx/devkit';
import { addDirectoryToGitignore } from '../utils/gitignore.ts';
import { warnAboutCachedBackupTargets } from '../utils/nx-json.ts';
import { rejectUnknownGeneratorOptions, type OptionNames } from '../utils/options.ts';
import { backupDirectoryOf, environmentNames, writeConfigFile } from './lib/config-file.ts';
import { normalizeOptions } from './lib/normalize-options.ts';
import { addProjectTargets } from './lib/project-targets.ts';
import type { ConfigurationGeneratorOptions } from './schema.d.ts';

const OPTION_NAMES = {
  project: true,
  provider: true,
  environments: true,
  connectionStringEnvs: true,
  migrateTarget: true,
  createMigrateTarget: true,
  migrationTool: true,
  scope: true,
  force: true,
  skipFormat: true,
} satisfies OptionNames<ConfigurationGeneratorOptions>;

/**
 * Sets a project up for backups. Works on the Tree only, so --dry-run is safe, and a second run
 * with the same options changes nothing.
 */
export async function configurationGenerator(tree: Tree, schema: ConfigurationGeneratorOptions): Promise<void> {
  rejectUnknownGeneratorOptions(schema, OPTION_NAMES, 'configuration');
  const options = normalizeOptions(tree, schema);
  const config = writeConfigFile(tree, options);
  const backupDirectory = backupDirectoryOf(config);
  if (backupDirectory !== undefined) addDirectoryToGitignore(tree, backupDirectory);
  addProjectTargets(tree, options, environmentNames(config));
  warnAboutCachedBackupTargets(tree);
  if (!options.skipFormat) await formatFiles(tree);
}

export default configurationGenerator;
