/** Where a project's (or the workspace's) config lives: the location shared with the faber-db tooling. */
export const CONFIG_RELATIVE_PATH = '.fractary/plugins/faber-db/config.json';
