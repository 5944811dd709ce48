import { afterAll } from 'vitest';
import { removeWorkspaces } from './workspace.ts';

// Every test file: its temp workspaces (configs, backups, catalogs) go when it ends.
afterAll(removeWorkspaces);
