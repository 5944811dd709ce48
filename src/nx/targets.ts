import type { TargetConfiguration } from '@nx/devkit';
import { PACKAGE_NAME } from '../version.ts';

/**
 * The single source of the Nx targets this plugin adds, shared by the configuration generator
 * (explicit targets in project.json) and createNodes (inferred targets).
 */

/** The nx.json `plugins` entry; resolves through the package's "./plugin" export. */
export const PLUGIN_ENTRY = `${PACKAGE_NAME}/plugin`;

/** The generated JSON Schema of the config file, as installed in node_modules. */
export const CONFIG_SCHEMA_PATH = `node_modules/${PACKAGE_NAME}/schemas/config.schema.json`;

export const TARGET_EXECUTORS = {
  backup: `${PACKAGE_NAME}:backup`,
  'verify-backup': `${PACKAGE_NAME}:verify-backup`,
  'list-backups': `${PACKAGE_NAME}:list-backups`,
  'delete-backup': `${PACKAGE_NAME}:delete-backup`,
  'pin-backup': `${PACKAGE_NAME}:pin-backup`,
  'cleanup-backups': `${PACKAGE_NAME}:cleanup-backups`,
  restore: `${PACKAGE_NAME}:restore`,
} as const;

export const PRE_MIGRATE_BACKUP_TARGET = 'pre-migrate-backup';

/** Shown by `nx show project` for inferred targets. */
export const TARGET_DESCRIPTIONS: Readonly<Record<string, string>> = {
  backup: 'Take a verified, cataloged backup of the database of an environment',
  'verify-backup': 'Check a backup (checksum, format; --deep restores it into a scratch database)',
  'list-backups': 'List the backups of an environment',
  'delete-backup': 'Delete a backup, its manifest and its catalog entry',
  'pin-backup': 'Pin a backup so that cleanup never deletes it (--unpin takes the pin off)',
  'cleanup-backups': 'Delete expired backups, keeping protected, pinned and the newest verified ones',
  restore: 'Restore a backup (a safety backup of the target is taken first)',
  [PRE_MIGRATE_BACKUP_TARGET]:
    'The safety backup that runs before migrate (skipped where backup_before_migrate is false)',
};

/** What the migrate target's dependency runs: a quiet backup that honours backup_before_migrate. */
export const PRE_MIGRATE_BACKUP_OPTIONS = {
  reason: 'pre-migration',
  label: 'pre-migration',
  yes: true,
  skipIfNotRequired: true,
  skipIfNothingPending: true,
} as const;

export const TARGET_NAMES = [...Object.keys(TARGET_EXECUTORS), PRE_MIGRATE_BACKUP_TARGET] as const;

/**
 * The inferred-targets plugin's options in nx.json rename its targets, as Nx's own plugins do
 * (`{ "plugin": "@faber-db/nx/plugin", "options": { "backupTargetName": "db-backup" } }`).
 */
export const TARGET_NAME_OPTIONS = {
  backup: 'backupTargetName',
  'verify-backup': 'verifyBackupTargetName',
  'list-backups': 'listBackupsTargetName',
  'delete-backup': 'deleteBackupTargetName',
  'pin-backup': 'pinBackupTargetName',
  'cleanup-backups': 'cleanupBackupsTargetName',
  restore: 'restoreTargetName',
  [PRE_MIGRATE_BACKUP_TARGET]: 'preMigrateBackupTargetName',
} as const satisfies Record<(typeof TARGET_NAMES)[number], string>;

export type FaberDbPluginOptions = { [K in (typeof TARGET_NAME_OPTIONS)[keyof typeof TARGET_NAME_OPTIONS]]?: string };

/** The name a target gets under these plugin options. */
export function inferredTargetName(
  name: keyof typeof TARGET_NAME_OPTIONS,
  options: FaberDbPluginOptions | undefined,
): string {
  return options?.[TARGET_NAME_OPTIONS[name]] || name;
}

/** An example per target for `metadata.help` (Nx Console and `nx show project` show it). */
export const TARGET_EXAMPLES: Readonly<Record<string, Record<string, unknown>>> = {
  backup: { label: 'pre-v2-migration' },
  'verify-backup': { deep: true },
  'list-backups': { limit: 10 },
  'delete-backup': { backupId: 'backup-20250124-140000' },
  'pin-backup': { backupId: 'backup-20250124-140000' },
  'cleanup-backups': { dryRun: true },
  restore: { from: 'backup-20250124-140000' },
  [PRE_MIGRATE_BACKUP_TARGET]: { yes: true },
};

export interface BackupTargetsInput {
  /** One Nx configuration per environment of the config file, each setting `environment`. */
  environments: readonly string[];
  /**
   * The migrate target's defaultConfiguration: Nx does not pass a dependent's default
   * configuration on to its dependencies, so the backup targets need the same one.
   */
  defaultConfiguration?: string;
}

export function environmentConfigurations(environments: readonly string[]): Record<string, { environment: string }> {
  return Object.fromEntries(environments.map((environment) => [environment, { environment }]));
}

function target(
  executor: string,
  options: Record<string, unknown>,
  input: BackupTargetsInput,
): TargetConfiguration<Record<string, unknown>> {
  return {
    executor,
    // A cached backup would be a backup that never ran: targetDefaults must not turn caching on.
    cache: false,
    options,
    configurations: environmentConfigurations(input.environments),
    ...(input.defaultConfiguration === undefined ? {} : { defaultConfiguration: input.defaultConfiguration }),
  };
}

/** All targets, keyed by target name, in a stable order. */
export function createBackupTargets(
  input: BackupTargetsInput,
): Record<string, TargetConfiguration<Record<string, unknown>>> {
  const targets: Record<string, TargetConfiguration<Record<string, unknown>>> = {};
  for (const [name, executor] of Object.entries(TARGET_EXECUTORS)) {
    targets[name] = target(executor, {}, input);
  }
  targets[PRE_MIGRATE_BACKUP_TARGET] = target(TARGET_EXECUTORS.backup, { ...PRE_MIGRATE_BACKUP_OPTIONS }, input);
  return targets;
}
