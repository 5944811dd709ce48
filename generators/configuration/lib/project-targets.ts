import {
  joinPathFragments,
  logger,
  readJson,
  readProjectConfiguration,
  updateProjectConfiguration,
  type TargetConfiguration as NxTargetConfiguration,
  type TargetDependencyConfig,
  type Tree,
} from '@nx/devkit';
import type { MigrationTool } from '../../../src/config/schema.ts';
import { createBackupTargets, PRE_MIGRATE_BACKUP_TARGET } from '../../../src/nx/targets.ts';
import { migrationsDirectoryIn } from './migration-tool.ts';
import type { NormalizedOptions } from './normalize-options.ts';

/** Nx types target options as `any`; ours are plain JSON objects. */
type TargetConfiguration = NxTargetConfiguration<Record<string, unknown>>;
type Targets = Record<string, TargetConfiguration>;

function describeTarget(target: TargetConfiguration): string {
  return target.executor ?? (target.command === undefined ? 'no executor' : `the command "${target.command}"`);
}

/**
 * Our target over an existing one of the same name: a target of ours keeps what the user set and
 * gains missing configurations; someone else's target is left alone unless --force.
 */
function mergeTarget(
  project: string,
  name: string,
  existing: TargetConfiguration | undefined,
  desired: TargetConfiguration,
  force: boolean,
): TargetConfiguration {
  if (existing === undefined || force) return desired;
  if (existing.executor !== desired.executor) {
    logger.warn(
      `${project} already has a target "${name}" that runs ${describeTarget(existing)}; it was left unchanged. Rename it, or run with --force to replace it.`,
    );
    return existing;
  }
  return {
    ...existing,
    cache: false,
    options: existing.options ?? desired.options,
    configurations: { ...existing.configurations, ...withoutKeys(desired.configurations, existing.configurations) },
    ...(existing.defaultConfiguration === undefined && desired.defaultConfiguration !== undefined
      ? { defaultConfiguration: desired.defaultConfiguration }
      : {}),
  };
}

function withoutKeys<T>(
  source: Record<string, T> | undefined,
  present: Record<string, unknown> | undefined,
): Record<string, T> {
  return Object.fromEntries(Object.entries(source ?? {}).filter(([key]) => !(present && key in present)));
}

/** Nx does not hand migrate's default configuration to its dependencies: the backups need it too. */
function defaultConfigurationFrom(
  project: string,
  migrateTarget: string,
  migrate: TargetConfiguration | undefined,
  environments: readonly string[],
): string | undefined {
  const inherited = migrate?.defaultConfiguration;
  if (inherited === undefined || environments.includes(inherited)) return inherited;
  logger.warn(
    `${project}:${migrateTarget} defaults to the configuration "${inherited}", which is not a faber-db environment (${environments.join(', ')}). ` +
      `"nx run ${project}:${migrateTarget}" will run ${PRE_MIGRATE_BACKUP_TARGET} without an environment; add "${inherited}" to the config file's environments.`,
  );
  return undefined;
}

function dependsOnPreMigrateBackup(dependency: string | TargetDependencyConfig): boolean {
  if (typeof dependency === 'string') return dependency === PRE_MIGRATE_BACKUP_TARGET;
  return (
    dependency.target === PRE_MIGRATE_BACKUP_TARGET && !dependency.dependencies && dependency.projects === undefined
  );
}

function withPreMigrateDependency(migrate: TargetConfiguration): TargetConfiguration {
  const dependsOn = migrate.dependsOn ?? [];
  if (dependsOn.some(dependsOnPreMigrateBackup)) return migrate;
  return { ...migrate, dependsOn: [...dependsOn, PRE_MIGRATE_BACKUP_TARGET] };
}

function warnAboutUncoveredConfigurations(
  project: string,
  migrateTarget: string,
  migrate: TargetConfiguration,
  environments: readonly string[],
): void {
  const uncovered = Object.keys(migrate.configurations ?? {}).filter((name) => !environments.includes(name));
  if (uncovered.length === 0) return;
  logger.warn(
    `${project}:${migrateTarget} has configurations with no faber-db environment: ${uncovered.join(', ')}. ` +
      `Running migrate with them runs ${PRE_MIGRATE_BACKUP_TARGET} without that environment; add them to the config file's environments.`,
  );
}

const MIGRATE_COMMANDS: Readonly<Record<MigrationTool, string>> = {
  prisma: 'npx prisma migrate deploy',
  knex: 'npx knex migrate:latest',
  drizzle: 'npx drizzle-kit migrate',
  flyway: 'flyway migrate',
  // No command that works without knowing the project: fail loudly until someone writes it.
  typeorm: 'echo "Replace this placeholder with: npx typeorm migration:run -d <your data source>" && exit 1',
  none: 'echo "Replace this placeholder with the command that migrates the database" && exit 1',
};

/** The migrate command of one configuration: knex picks its knexfile environment with --env; the others read .env files. */
function migrateConfiguration(tool: MigrationTool, environment: string): Record<string, string> {
  return tool === 'knex' ? { command: `${MIGRATE_COMMANDS.knex} --env ${environment}` } : {};
}

/**
 * Without inputs, every change to the project makes migrate "affected" (`nx affected -t migrate`
 * would migrate production on a README edit): only the migrations folder should.
 */
function migrateInputs(tree: Tree, options: NormalizedOptions): string[] | undefined {
  const directory = migrationsDirectoryIn(
    tree,
    options.projectRoot,
    options.migrationTool,
    options.migrationsDirectory,
  );
  return directory === undefined ? undefined : [`{projectRoot}/${directory}/**/*`];
}

function placeholderMigrateTarget(
  tree: Tree,
  options: NormalizedOptions,
  environments: readonly string[],
): TargetConfiguration {
  const inputs = migrateInputs(tree, options);
  return {
    executor: 'nx:run-commands',
    cache: false,
    ...(inputs ? { inputs } : {}),
    dependsOn: [PRE_MIGRATE_BACKUP_TARGET],
    options: { command: MIGRATE_COMMANDS[options.migrationTool], cwd: '{projectRoot}' },
    configurations: Object.fromEntries(
      environments.map((name) => [name, migrateConfiguration(options.migrationTool, name)]),
    ),
  };
}

function warnAboutMissingInputs(tree: Tree, options: NormalizedOptions, migrate: TargetConfiguration): void {
  if (migrate.inputs !== undefined) return;
  const inputs = migrateInputs(tree, options);
  const add = inputs
    ? `Add "inputs": ${JSON.stringify(inputs)} to it`
    : 'Add "inputs" naming its migrations folder to it';
  logger.warn(
    `${options.project}:${options.migrateTarget} has no "inputs", so any change to the project makes it affected: ` +
      `"nx affected -t ${options.migrateTarget}" would migrate (and back up) on a README edit. ${add}.`,
  );
}

/** Nx turns the scripts of a project's package.json into targets the project configuration does not list. */
function hasPackageScript(tree: Tree, projectRoot: string, script: string): boolean {
  const path = joinPathFragments(projectRoot, 'package.json');
  if (!tree.exists(path)) return false;
  const scripts = readJson<{ scripts?: Record<string, unknown> }>(tree, path).scripts;
  return typeof scripts?.[script] === 'string';
}

function wireMigrateTarget(
  tree: Tree,
  targets: Targets,
  options: NormalizedOptions,
  environments: readonly string[],
): void {
  const { project, migrateTarget } = options;
  const migrate = targets[migrateTarget];
  if (migrate !== undefined) {
    warnAboutUncoveredConfigurations(project, migrateTarget, migrate, environments);
    warnAboutMissingInputs(tree, options, migrate);
    targets[migrateTarget] = withPreMigrateDependency(migrate);
    return;
  }
  if (hasPackageScript(tree, options.projectRoot, migrateTarget)) {
    // Only dependsOn: Nx merges it with the target it infers from the script.
    targets[migrateTarget] = { dependsOn: [PRE_MIGRATE_BACKUP_TARGET] };
    return;
  }
  if (options.createMigrateTarget) {
    targets[migrateTarget] = placeholderMigrateTarget(tree, options, environments);
    logger.info(
      `Created ${project}:${migrateTarget} running "${MIGRATE_COMMANDS[options.migrationTool]}". Each configuration must reach its own ` +
        `database: Nx loads .env.<configuration> files (e.g. .env.production) into the task.`,
    );
    return;
  }
  logger.warn(
    `${project} has no "${migrateTarget}" target in its project configuration, so nothing runs ${PRE_MIGRATE_BACKUP_TARGET} yet. ` +
      `Add "dependsOn": ["${PRE_MIGRATE_BACKUP_TARGET}"] to the target that migrates the database (this also works in project.json ` +
      `for a target another plugin infers), pass --migrateTarget=<name>, or rerun with --createMigrateTarget.`,
  );
}

/**
 * Adds the backup targets (one configuration per environment) and makes the migrate target
 * depend on pre-migrate-backup. Writes the project configuration only when something changed.
 */
export function addProjectTargets(tree: Tree, options: NormalizedOptions, environments: readonly string[]): void {
  const project = readProjectConfiguration(tree, options.project);
  const before = JSON.stringify(project);
  const targets: Targets = { ...project.targets };

  const defaultConfiguration = defaultConfigurationFrom(
    options.project,
    options.migrateTarget,
    targets[options.migrateTarget],
    environments,
  );
  const desired = createBackupTargets({
    environments,
    ...(defaultConfiguration === undefined ? {} : { defaultConfiguration }),
  });
  for (const [name, target] of Object.entries(desired)) {
    targets[name] = mergeTarget(options.project, name, targets[name], target, options.force);
  }
  wireMigrateTarget(tree, targets, options, environments);

  const updated = { ...project, targets };
  if (JSON.stringify(updated) !== before) updateProjectConfiguration(tree, options.project, updated);
}
