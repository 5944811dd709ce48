import { logger, type Tree } from '@nx/devkit';
import { createTreeWithEmptyWorkspace } from '@nx/devkit/testing';
import { vi } from 'vitest';

/**
 * An empty Nx workspace for a generator test, with the warnings it logs collected in `warnings` and its
 * info messages silenced (undo the spies with vi.restoreAllMocks()).
 */
export function emptyWorkspace(): { tree: Tree; warnings: string[] } {
  const warnings: string[] = [];
  vi.spyOn(logger, 'warn').mockImplementation((message: unknown) => void warnings.push(String(message)));
  vi.spyOn(logger, 'info').mockImplementation(() => undefined);
  return { tree: createTreeWithEmptyWorkspace({ formatter: 'none' }), warnings };
}
