import { readJson, updateJson, type Tree } from '@nx/devkit';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../../src/version.ts';

type Dependencies = Record<string, string>;

interface PackageJson {
  name?: string;
  dependencies?: Dependencies;
  devDependencies?: Dependencies;
}

function sortedByName(dependencies: Dependencies): Dependencies {
  return Object.fromEntries(Object.entries(dependencies).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Records the plugin in the root package.json devDependencies when no dependency list has it.
 * The package is necessarily installed already (it is running), so no install task is returned.
 */
export function addPluginToDevDependencies(tree: Tree): boolean {
  if (!tree.exists('package.json')) return false;
  const manifest = readJson<PackageJson>(tree, 'package.json');
  const listed =
    manifest.name === PACKAGE_NAME ||
    manifest.dependencies?.[PACKAGE_NAME] !== undefined ||
    manifest.devDependencies?.[PACKAGE_NAME] !== undefined;
  if (listed) return false;

  const range = `^${PACKAGE_VERSION}`;
  updateJson<PackageJson>(tree, 'package.json', (json) => ({
    ...json,
    devDependencies: sortedByName({ ...json.devDependencies, [PACKAGE_NAME]: range }),
  }));
  return true;
}
