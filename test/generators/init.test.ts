import { addProjectConfiguration, readJson, readNxJson, updateNxJson, type Tree } from '@nx/devkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { initGenerator } from '../../generators/init/generator.ts';
import { PACKAGE_VERSION } from '../../src/version.ts';
import { emptyWorkspace } from './empty-workspace.ts';
import { treeFiles } from './tree-files.ts';
import { stringContaining } from '../support/matchers.ts';

const PLUGIN = '@faber-db/nx/plugin';

type PackageJson = { devDependencies?: Record<string, string> };

describe('init generator', () => {
  let tree: Tree;
  let warnings: string[];

  beforeEach(() => {
    ({ tree, warnings } = emptyWorkspace());
  });

  afterEach(() => vi.restoreAllMocks());

  it('registers the plugin, ignores the backups directory and records the package', async () => {
    await initGenerator(tree, {});

    expect(readNxJson(tree)?.plugins).toEqual([{ plugin: PLUGIN, options: {} }]);
    expect(tree.read('.gitignore', 'utf-8')).toContain('\n.fractary/plugins/faber-db/backups/\n');
    expect(readJson<PackageJson>(tree, 'package.json').devDependencies).toEqual({
      '@faber-db/nx': `^${PACKAGE_VERSION}`,
    });
  });

  it('refuses an unknown option with INVALID_OPTION and the intended name, before changing anything', async () => {
    const before = treeFiles(tree);
    const typo = { skipFormt: true } as unknown as Parameters<typeof initGenerator>[1];

    await expect(initGenerator(tree, typo)).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: stringContaining('Did you mean `--skipFormat` instead of `--skipFormt`?'),
    });
    expect(treeFiles(tree)).toEqual(before);
  });

  it('names an inferred target differently where a project already has a target of that name running something else', async () => {
    addProjectConfiguration(tree, 'api', {
      root: 'apps/api',
      targets: { restore: { command: 'pg_restore dump' }, backup: { executor: '@faber-db/nx:backup' } },
    });
    tree.write(
      'apps/api/package.json',
      JSON.stringify({ name: 'api', scripts: { 'list-backups': 'ls backups', 'db-list-backups': 'ls' } }),
    );

    await initGenerator(tree, {});

    expect(readNxJson(tree)?.plugins).toEqual([
      { plugin: PLUGIN, options: { restoreTargetName: 'db-restore', listBackupsTargetName: 'faber-db-list-backups' } },
    ]);
  });

  it('changes nothing on a second run', async () => {
    await initGenerator(tree, {});
    const first = treeFiles(tree);

    await initGenerator(tree, {});

    expect(treeFiles(tree)).toEqual(first);
  });

  it('keeps an existing plugin entry in its string form and other plugins in place', async () => {
    updateNxJson(tree, { ...readNxJson(tree), plugins: ['@nx/js/typescript', PLUGIN] });

    await initGenerator(tree, {});

    expect(readNxJson(tree)?.plugins).toEqual(['@nx/js/typescript', PLUGIN]);
  });

  it('appends to an existing .gitignore, once, whatever spelling it already uses', async () => {
    tree.write('.gitignore', 'node_modules');
    await initGenerator(tree, {});
    expect(tree.read('.gitignore', 'utf-8')).toMatch(
      /^node_modules\n\n# faber-db .*\n\.fractary\/plugins\/faber-db\/backups\/\n$/,
    );

    tree.write('.gitignore', 'dist/\n/.fractary/plugins/faber-db/backups\n');
    await initGenerator(tree, {});
    expect(tree.read('.gitignore', 'utf-8')).toBe('dist/\n/.fractary/plugins/faber-db/backups\n');
  });

  it('leaves package.json alone with skipPackageJson, or when the package is already a dependency', async () => {
    const before = tree.read('package.json', 'utf-8');
    await initGenerator(tree, { skipPackageJson: true });
    expect(tree.read('package.json', 'utf-8')).toBe(before);

    tree.write('package.json', JSON.stringify({ name: 'ws', dependencies: { '@faber-db/nx': '0.0.9' } }));
    await initGenerator(tree, {});
    expect(readJson(tree, 'package.json')).toEqual({ name: 'ws', dependencies: { '@faber-db/nx': '0.0.9' } });
  });

  it('sorts the new devDependency among the existing ones', async () => {
    tree.write(
      'package.json',
      JSON.stringify({ name: 'ws', devDependencies: { nx: '24.0.6', '@nx/devkit': '24.0.0' } }),
    );

    await initGenerator(tree, {});

    expect(Object.keys(readJson<PackageJson>(tree, 'package.json').devDependencies ?? {})).toEqual([
      '@faber-db/nx',
      '@nx/devkit',
      'nx',
    ]);
  });

  it('does not add the plugin to a workspace that turned inference plugins off', async () => {
    updateNxJson(tree, { ...readNxJson(tree), useInferencePlugins: false });

    await initGenerator(tree, {});

    expect(readNxJson(tree)?.plugins).toBeUndefined();
    expect(tree.read('.gitignore', 'utf-8')).toContain('.fractary/plugins/faber-db/backups/');
  });

  it('warns when targetDefaults would cache backups, and only then', async () => {
    const nxJson = readNxJson(tree) ?? {};
    await initGenerator(tree, {});
    expect(warnings).toEqual([]);

    updateNxJson(tree, {
      ...nxJson,
      targetDefaults: {
        ...nxJson.targetDefaults,
        backup: { cache: true },
        '@faber-db/nx:restore': [{ filter: { projects: ['api'] }, cache: true }],
        'list-backups': { cache: false },
      },
    });
    await initGenerator(tree, {});

    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /caching on for "backup", "@faber-db\/nx:restore"\. A cached backup is a backup that never ran/,
    );
  });
});
