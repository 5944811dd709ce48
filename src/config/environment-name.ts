/**
 * An environment name: a letter or digit, then letters, digits, - and _. It becomes an Nx configuration
 * name and a path segment of the backup directory. Kept free of zod: the graph plugin reads it too.
 */
export const ENVIRONMENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]*$/i;
