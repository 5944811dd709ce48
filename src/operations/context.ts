import path from 'node:path';
import type { Reporter } from '../output/reporter.ts';
import { loadConfig } from '../config/load.ts';
import {
  identityVariables,
  resolveConnection,
  resolveEnvironment,
  withoutVariables,
  type ResolvedEnvironment,
} from '../config/environment.ts';
import type { ConnectionInfo } from '../config/connection.ts';
import type { FaberConfig } from '../config/schema.ts';
import { createHandler, type DatabaseHandler } from '../handlers/index.ts';
import { Catalog } from '../catalog/catalog.ts';
import { openStorage } from '../storage/open.ts';

/** What every operation needs from its caller (the Nx executor, or a program using the API). */
export interface OperationContext {
  workspaceRoot: string;
  projectName: string;
  /** Project root relative to the workspace root; its config file wins over the workspace's. */
  projectRoot?: string | undefined;
  /** Environment for reading connection URLs and for child processes. */
  env: NodeJS.ProcessEnv;
  reporter: Reporter;
  /** A person is at a terminal who can answer questions. */
  interactive: boolean;
  verbose?: boolean | undefined;
  now?: () => Date;
  /** Asks a yes/no question (or for a typed word when `expected` is given). */
  confirm?: (question: string, expected?: string) => Promise<boolean>;
  /** Free bytes where the backup goes; injectable for tests. */
  freeSpace?: (directory: string) => Promise<number>;
  signal?: AbortSignal | undefined;
  /** The Nx task (project:target:configuration) this operation runs as, recorded with backups. */
  taskId?: string | undefined;
}

/** Config, environment and catalog: what every operation resolves first. */
export interface Workspace {
  config: FaberConfig;
  configPath: string;
  environment: ResolvedEnvironment;
  backupRoot: string;
  catalog: Catalog;
}

/** Like a Workspace, for operations where the environment is optional (list, cleanup). */
export interface CatalogWorkspace extends Omit<Workspace, 'environment'> {
  environment: ResolvedEnvironment | undefined;
}

/** The workspace of one environment (without a name, the config's default); `steps` reports each part as it is done. */
export function openWorkspace(
  ctx: OperationContext,
  environmentName: string | undefined,
  steps = true,
): Promise<Workspace> {
  return openWith(ctx, steps, (config) => resolveEnvironment(config, environmentName, ctx.projectName));
}

/** The workspace of one environment, or of all of them when no name is given. */
export function openCatalogWorkspace(
  ctx: OperationContext,
  environmentName: string | undefined,
): Promise<CatalogWorkspace> {
  return openWith(ctx, true, (config) =>
    environmentName === undefined ? undefined : resolveEnvironment(config, environmentName, ctx.projectName),
  );
}

async function openWith<E extends ResolvedEnvironment | undefined>(
  ctx: OperationContext,
  steps: boolean,
  resolve: (config: FaberConfig) => E,
): Promise<Omit<Workspace, 'environment'> & { environment: E }> {
  const { config, path: configPath } = await loadConfig(ctx.workspaceRoot, ctx.projectRoot);
  if (steps) ctx.reporter.step(`Configuration loaded (${path.relative(ctx.workspaceRoot, configPath)})`);
  const environment = resolve(config);
  if (steps) ctx.reporter.step(environment ? `Environment validated: ${environment.name}` : 'Environment: all');
  const backupRoot = path.resolve(ctx.workspaceRoot, config.backup.directory);
  const storage = await openStorage(config, environment, { backupRoot, workspaceRoot: ctx.workspaceRoot }, (message) =>
    ctx.reporter.warn(message),
  );
  return {
    config,
    configPath,
    environment,
    backupRoot,
    catalog: new Catalog({ backupRoot, workspaceRoot: ctx.workspaceRoot, storage }),
  };
}

export async function openDatabase(
  ctx: OperationContext,
  workspace: Workspace,
  connectionEnv?: string,
): Promise<{ connection: ConnectionInfo; handler: DatabaseHandler }> {
  const variable = connectionEnv ?? workspace.environment.settings.connection_string_env;
  const connection = resolveConnection(workspace.config, workspace.environment, ctx.env, ctx.workspaceRoot, variable);
  // The client tools get their credentials from the handler; they need not inherit the URL, nor an age key.
  const toolEnv = withoutVariables(ctx.env, [variable, ...identityVariables(workspace.config)]);
  const handler = await createHandler(connection, {
    env: toolEnv,
    tempDirectory: path.join(workspace.backupRoot, '.tmp'),
  });
  return { connection, handler };
}

/** Project names may contain "/" (npm scopes); one path segment per project keeps the layout flat. */
export function projectSegment(projectName: string): string {
  return projectName.replace(/[/\\]/g, '__').replace(/^\.+/, '_');
}

/** The storage key (a directory, ending in `/`) of one project's backups in one environment. */
export function backupDirectoryKey(projectName: string, environment: string): string {
  return `${projectSegment(projectName)}/${environment}/`;
}
