import type { Tree } from '@nx/devkit';

/** Every file of the tree with its content: two snapshots are equal when nothing changed. */
export function treeFiles(tree: Tree, directory = ''): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of tree.children(directory)) {
    const path = directory === '' ? name : `${directory}/${name}`;
    if (tree.isFile(path)) files[path] = tree.read(path, 'utf-8') ?? '';
    else Object.assign(files, treeFiles(tree, path));
  }
  return files;
}
