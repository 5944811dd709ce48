import { formatFiles, type Tree } from '@nx/devkit';
import { addDirectoryToGitignore } from '../utils/gitignore.ts';
import { warnAboutCachedBackupTargets } from '../utils/nx-json.ts';
import { rejectUnknownGeneratorOptions, type OptionNames } from '../utils/options.ts';
import { backupDirectoryOf, environmentNames, migrationsDirectoryOf, writeConfigFile } from './lib/config-file.ts';
import {
  chooseMigrationTool,
  existingMigrationsDirectory,
  terminalQuestion,
  type MigrationToolQuestion,
} from './lib/migration-tool.ts';
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
export async function configurationGenerator(
  tree: Tree,
  schema: ConfigurationGeneratorOptions,
  ask: MigrationToolQuestion | null = terminalQuestion(),
): Promise<void> {
  rejectUnknownGeneratorOptions(schema, OPTION_NAMES, 'configuration');
  const normalized = normalizeOptions(tree, schema, await chooseMigrationTool(tree, schema, ask));
  const options = {
    ...normalized,
    migrationsDirectory: existingMigrationsDirectory(tree, normalized.projectRoot, normalized.migrationTool),
  };
  const config = writeConfigFile(tree, options);
  const backupDirectory = backupDirectoryOf(config);
  if (backupDirectory !== undefined) addDirectoryToGitignore(tree, backupDirectory);
  addProjectTargets(tree, { ...options, migrationsDirectory: migrationsDirectoryOf(config) }, environmentNames(config));
  warnAboutCachedBackupTargets(tree);
  if (!options.skipFormat) await formatFiles(tree);
}

export default configurationGenerator;
