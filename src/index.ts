/**
 * The programmatic API: the same operations the executors run.
 *
 *   import { createBackup, consoleReporter } from '@faber-db/nx';
 *   const result = await createBackup({ environment: 'production', label: 'nightly' }, {
 *     workspaceRoot: process.cwd(), projectName: 'api', env: process.env,
 *     reporter: consoleReporter({ out: process.stdout, interactive: false }), interactive: false,
 *   });
 */
export {
  createBackup,
  type BackupOptions,
  type BackupResultData,
  type SkippedBackupData,
} from './operations/backup.ts';
export {
  verifyBackup,
  type VerifyBackupOptions,
  type VerifyResultData,
  type VerifiedBackup,
} from './operations/verify.ts';
export { listBackups, type ListBackupsOptions, type ListResultData, type ListedBackup } from './operations/list.ts';
export { deleteBackup, type DeleteBackupOptions, type DeleteResultData } from './operations/delete.ts';
export { pinBackup, type PinBackupOptions, type PinResultData } from './operations/pin.ts';
export {
  cleanupBackups,
  type CleanupBackupsOptions,
  type CleanupResultData,
  type CleanupItem,
  type OrphanReport,
} from './operations/cleanup.ts';
export { restoreBackup, type RestoreOptions, type RestoreResultData } from './operations/restore.ts';
export type { OperationContext } from './operations/context.ts';
export { loadConfig, parseConfig, CONFIG_RELATIVE_PATH } from './config/load.ts';
export { configSchema, type FaberConfig, type Provider, type Compression, type BackupFormat } from './config/schema.ts';
export { parseConnectionUrl, type ConnectionInfo } from './config/connection.ts';
export { Catalog } from './catalog/catalog.ts';
export { catalogSchema, backupEntrySchema, type BackupEntry, type MigrationState } from './catalog/schema.ts';
export { createHandler } from './handlers/index.ts';
export type { DatabaseHandler } from './handlers/handler.ts';
export { FaberError, ERROR_CODES, type ErrorCode } from './output/errors.ts';
export { consoleReporter, silentReporter, type Reporter } from './output/reporter.ts';
export type { OperationResult, SuccessResult, ErrorResult } from './output/result.ts';
export { redactUrls } from './util/redact.ts';
