import { afterAll } from 'vitest';
import { removeTempDirectories } from './temp.ts';
import { removeWorkspaces } from './workspace.ts';

// Every test file: its temp workspaces (configs, backups, catalogs) and temp directories go when it ends.
afterAll(removeWorkspaces);
afterAll(removeTempDirectories);
