import type { Tree } from '@nx/devkit';

const GITIGNORE = '.gitignore';

/** `/a/b/` and `a/b` name the same directory for our purpose. */
function normalizePattern(pattern: string): string {
  return pattern
    .trim()
    .replace(/^\.?\//, '')
    .replace(/\/+$/, '');
}

/**
 * Adds a directory (relative to the workspace root) to the root .gitignore once.
 * Returns whether the file changed.
 */
export function addDirectoryToGitignore(tree: Tree, directory: string): boolean {
  const pattern = normalizePattern(directory);
  const content = tree.exists(GITIGNORE) ? (tree.read(GITIGNORE, 'utf-8') ?? '') : '';
  const lines = content.split(/\r?\n/);
  if (lines.some((line) => normalizePattern(line) === pattern)) return false;

  const separator = content === '' ? '' : content.endsWith('\n') ? '\n' : '\n\n';
  tree.write(GITIGNORE, `${content}${separator}# faber-db backups: database dumps never belong in git\n${pattern}/\n`);
  return true;
}
