import { formatFiles, type Tree } from '@nx/devkit';
import { DEFAULT_BACKUP_DIRECTORY } from '../../src/config/schema.ts';
import { addDirectoryToGitignore } from '../utils/gitignore.ts';
import { registerPlugin, warnAboutCachedBackupTargets } from '../utils/nx-json.ts';
import { rejectUnknownGeneratorOptions, type OptionNames } from '../utils/options.ts';
import { addPluginToDevDependencies } from '../utils/package-json.ts';
import type { InitGeneratorOptions } from './schema.d.ts';

const OPTION_NAMES = { skipFormat: true, skipPackageJson: true } satisfies OptionNames<InitGeneratorOptions>;

/** `nx add @faber-db/nx` runs this. Every step is idempotent: a second run changes nothing. */
export async function initGenerator(tree: Tree, options: InitGeneratorOptions = {}): Promise<void> {
  rejectUnknownGeneratorOptions(options, OPTION_NAMES, 'init');
  registerPlugin(tree);
  warnAboutCachedBackupTargets(tree);
  addDirectoryToGitignore(tree, DEFAULT_BACKUP_DIRECTORY);
  if (!options.skipPackageJson) addPluginToDevDependencies(tree);
  if (!options.skipFormat) await formatFiles(tree);
}

export default initGenerator;
