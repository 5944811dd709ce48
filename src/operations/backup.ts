import { statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import dayjs from 'dayjs';
import {
  effectiveCompression,
  effectiveEncryption,
  effectiveFormat,
  effectiveParallelJobs,
  effectiveRetentionDays,
  identityVariables,
  withoutVariables,
} from '../config/environment.ts';
import type { Compression, EncryptionConfig } from '../config/schema.ts';
import { CATALOG_FILE_NAME, parseCatalog } from '../catalog/catalog.ts';
import type { StoredFormat } from '../catalog/formats.ts';
import { MANIFEST_SUFFIX, serializeManifest } from '../catalog/manifest.ts';
import type { BackupEntry, BackupSource, MigrationState, Provenance } from '../catalog/schema.ts';
import { sameDatabase, sourceOf } from '../catalog/source.ts';
import type { ConnectionInfo } from '../config/connection.ts';
import { resolveConnection } from '../config/environment.ts';
import { collectProvenance } from '../migrations/provenance.ts';
import type { DatabaseHandler, DatabaseSnapshot, DumpSession, ServerInfo } from '../handlers/handler.ts';
import { FaberError, toFaberError } from '../output/errors.ts';
import { humanBytes, humanDuration } from '../output/format.ts';
import { success, type OperationResult } from '../output/result.ts';
import { writeArchive, type ArchiveStats } from '../pipeline/archive.ts';
import { compressionSuffix, DEFAULT_ZSTD_LEVEL } from '../pipeline/compression.ts';
import { AGE_SUFFIX, checkStoredAgeHeader, prepareEncryption } from '../pipeline/encryption.ts';
import { recordEncryption, refuseUnencryptable } from './backup-encryption.ts';
import {
  directoryDigest,
  startInPassVerification,
  verifyBackupFile,
  type BackupFile,
  type InPassVerification,
  type VerifyReport,
} from '../pipeline/verify.ts';
import { hashDirectory } from '../pipeline/directory.ts';
import { backupId, slugLabel } from '../util/ids.ts';
import { reserveId } from '../catalog/reservations.ts';
import { LocalStorage } from '../storage/local.ts';
import { localCopyStorage } from '../storage/open.ts';
import { teeWriter } from '../storage/tee.ts';
import { baseName, type Storage } from '../storage/storage.ts';
import { faultPoint, faultPointPast } from '../util/fault.ts';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version.ts';
import { parseBackupOptions, type BackupOptions } from './backup-options.ts';
import { backupDirectoryKey, openDatabase, openWorkspace, type OperationContext, type Workspace } from './context.ts';
import { BANNER_TITLE, runOperation, type OperationRun } from './run.ts';
import { backupFileOf } from './select.ts';
import { describeMigrations, nothingToMigrate, pendingFor, withPending } from './pre-migration.ts';
import { currentTime } from './clock.ts';

export type { BackupOptions } from './backup-options.ts';

/** Compressed dumps of typical data are about 30 % of the database size: the free space asked for before a backup. */
const COMPRESSED_SIZE_FACTOR = 0.3;
const SIZE_BUFFER = 1.2;

export interface BackupResultData {
  backup_id: string;
  label: string | null;
  reason: string | null;
  file_path: string;
  size_bytes: number;
  size_human: string;
  compressed: boolean;
  compression: Compression;
  compression_ratio: number;
  format: StoredFormat;
  checksum: BackupEntry['checksum'];
  migrations: { applied_count: number; last_migration: string | null; pending?: string[] };
  pinned: boolean;
  retention_days: number;
  expires_at: string;
  verification: { integrity_check: 'passed'; file_readable: boolean };
  duration_ms: number;
  restore_command: string;
}

export interface SkippedBackupData {
  skipped: true;
  reason: string;
}

/**
 * Creates a verified, cataloged backup of one project's database in one environment; with
 * `other`, of the database in that variable instead (restore's safety backup of its target),
 * recorded as a backup of that database.
 */
export async function createBackup(
  rawOptions: BackupOptions,
  ctx: OperationContext,
  other?: { connectionStringEnv: string },
): Promise<OperationResult<BackupResultData | SkippedBackupData>> {
  const environmentName = rawOptions.environment;
  const scope = { operation: 'create-backup', project: ctx.projectName, environment: environmentName };
  ctx.reporter.start(BANNER_TITLE, {
    Project: ctx.projectName,
    Environment: environmentName,
    Operation: 'create-backup',
    Label: rawOptions.label,
  });
  return runOperation<BackupResultData | SkippedBackupData>(scope, ctx, async (run) => {
    const options = parseBackupOptions(rawOptions);
    const workspace = await openWorkspace(ctx, options.environment);
    if (options.skipIfNotRequired && !workspace.environment.settings.backup_before_migrate) {
      return skipped(
        ctx,
        workspace,
        scope,
        `backup_before_migrate is false for ${workspace.environment.name}`,
        'not required',
      );
    }
    const { handler, connection } = await openDatabase(ctx, workspace, other?.connectionStringEnv);
    run.secrets.add(connection.password);
    try {
      const upToDate = options.skipIfNothingPending ? await nothingToMigrate(handler, workspace, ctx) : undefined;
      if (upToDate) return skipped(ctx, workspace, scope, upToDate, 'nothing to migrate');
      const source = sourceOf(
        connection,
        ctx.workspaceRoot,
        other === undefined || isEnvironmentConnection(connection, workspace, ctx),
      );
      return await backupWith(handler, workspace, options, ctx, run, scope, source);
    } finally {
      await handler.close();
    }
  });
}

function skipped(
  ctx: OperationContext,
  workspace: Workspace,
  scope: { operation: string; project: string; environment: string | undefined },
  reason: string,
  short: string,
) {
  ctx.reporter.step(`Backup skipped: ${reason}${short === 'nothing to migrate' ? '; no backup taken' : ''}`);
  ctx.reporter.complete(BANNER_TITLE, { Environment: workspace.environment.name, Result: `skipped (${short})` });
  return success<SkippedBackupData>(
    scope,
    { skipped: true, reason },
    `Backup skipped for ${workspace.environment.name}: ${reason}`,
  );
}

interface Plan {
  id: string;
  release: () => Promise<void>;
  label: string | null;
  reason: string | null;
  format: StoredFormat;
  compression: Compression;
  encryption: EncryptionConfig | undefined;
  /** The environment of the tools that check the file (pg_restore --list): no age key. */
  toolEnv?: NodeJS.ProcessEnv;
  retentionDays: number;
  directory: string;
  finalKey: string;
  partialKey: string;
  /**
   * Where the archive is streamed: the `.partial` file on a local disk (renamed when verified), or
   * the final key in an object store, where an object appears only once its upload completes and
   * only the manifest (written last) makes it a backup.
   */
  writeKey: string;
  /** The written archive as verification reads it (a local path, or streamed back from the store). */
  written: () => Promise<BackupFile>;
  /** `keep_local_copy`: the local directory that gets the same bytes in the same pass. */
  localCopy?: LocalStorage | undefined;
  /** Filesystem paths of the two keys, for the tools and checks that need one. */
  finalPath: string;
  partialPath: string;
}

async function backupWith(
  handler: DatabaseHandler,
  workspace: Workspace,
  options: BackupOptions,
  ctx: OperationContext,
  run: OperationRun,
  scope: { operation: string; project: string; environment: string | undefined },
  source: BackupSource,
) {
  const started = Date.now();
  const now = currentTime(ctx);
  const label = options.label ? slugLabel(options.label) : null;
  const format = handler.engine.storedFormat(effectiveFormat(workspace.config, workspace.environment, options.format));
  const compression = effectiveCompression(workspace.config, workspace.environment, options.compression);
  const encryption = effectiveEncryption(workspace.config, workspace.environment);
  if (encryption) refuseUnencryptable(format, workspace.environment.name);

  const server = await preChecks(handler, workspace, options, ctx, compression);
  const storage = workspace.catalog.storage;
  if (format === 'directory') localOnly(storage, format);
  run.signal.throwIfAborted();
  const plan = await planBackup(handler, workspace, options, ctx, { now, label, format, compression, encryption });
  let dumped: Dumped | undefined;
  try {
    const encrypted = encryption
      ? `, age-encrypted for ${encryption.recipients.length} recipient${encryption.recipients.length === 1 ? '' : 's'}`
      : '';
    ctx.reporter.step(
      `Creating backup with ${handler.backupMethod(format)} (${format}, ${compression === 'none' ? 'uncompressed' : compression}${encrypted})`,
    );
    dumped = await dump(handler, workspace, plan, server, ctx, run);
    faultPoint('backup:dumped');
    ctx.reporter.step(
      `Backup file created: ${humanBytes(dumped.stats.sizeBytes)} (${humanBytes(dumped.stats.uncompressedBytes)} before compression)`,
    );
    ctx.reporter.step('Verifying backup integrity');
    const report = await verifyPartial(plan, dumped, handler, ctx, run);
    faultPoint('backup:verified');
    const migrations = await recordedMigrations(dumped.snapshot.migrations, options, workspace, ctx);
    const provenance = await collectProvenance(ctx.env, ctx.workspaceRoot, ctx.taskId);
    const entry = buildEntry({
      plan,
      workspace,
      ctx,
      handler,
      source,
      server,
      dumped,
      report,
      now,
      started,
      tags: options.tags ?? [],
      migrations,
      provenance,
      pinned: options.pin ?? false,
    });
    run.signal.throwIfAborted();
    await recordBackup(plan, entry, workspace, ctx);
    const result = resultData(entry, ctx.projectName);
    reportCreated(entry, result, compression, ctx);
    return success(scope, result, `Backup created successfully for ${entry.environment}`);
  } catch (error) {
    await dumped?.inPass?.discard();
    await storage.delete(plan.writeKey);
    await plan.localCopy?.delete(plan.partialKey);
    if (await discardIfUnrecorded(storage, plan)) await plan.release();
    throw error;
  }
}

/** Before anything is written: the tools and the server answer, the backup directory takes files, there is room, and a person agreed where asked. */
async function preChecks(
  handler: DatabaseHandler,
  workspace: Workspace,
  options: BackupOptions,
  ctx: OperationContext,
  compression: Compression,
): Promise<ServerInfo> {
  const server = await handler.preflight();
  const client = `${server.clientTool} ${server.clientVersion}`;
  const versions = [server.clientVersion, client].includes(server.serverVersion)
    ? client
    : `${client}, server ${server.serverVersion}`;
  ctx.reporter.step(`Pre-checks passed: ${versions}, database ${handler.live.display} reachable`);
  const storage = workspace.catalog.storage;
  const directoryKey = backupDirectoryKey(ctx.projectName, workspace.environment.name);
  await storage.prepare(directoryKey);
  const directory = storage.localPath(directoryKey);
  if (directory !== undefined) await checkSpace(ctx, directory, server, compression, workspace);
  await confirmIfRequired(ctx, workspace, server, options);
  return server;
}

/** Reserves the backup's id and gathers what writing and recording it needs. */
async function planBackup(
  handler: DatabaseHandler,
  workspace: Workspace,
  options: BackupOptions,
  ctx: OperationContext,
  chosen: {
    now: Date;
    label: string | null;
    format: StoredFormat;
    compression: Compression;
    encryption: EncryptionConfig | undefined;
  },
): Promise<Plan> {
  const directoryKey = backupDirectoryKey(ctx.projectName, workspace.environment.name);
  const reserved = await reserveBackupId(
    workspace.catalog.storage,
    directoryKey,
    chosen.now,
    chosen.label,
    handler,
    chosen.format,
    chosen.compression,
    chosen.encryption,
  );
  faultPoint('backup:reserved');
  ctx.reporter.step(`Backup ID generated: ${reserved.id}`);
  return {
    ...reserved,
    reason: options.reason ?? null,
    localCopy: localCopyStorage(workspace.config, workspace.environment, {
      backupRoot: workspace.backupRoot,
      workspaceRoot: ctx.workspaceRoot,
    }),
    toolEnv: withoutVariables(ctx.env, identityVariables(workspace.config)),
    retentionDays: effectiveRetentionDays(
      workspace.config,
      workspace.environment,
      options.retentionDays,
      options.reason,
    ),
  };
}

/** The verified archive takes its final name, the catalog records it, and the local copy (if asked for) is kept. */
async function recordBackup(
  plan: Plan,
  entry: BackupEntry,
  workspace: Workspace,
  ctx: OperationContext,
): Promise<void> {
  const storage = workspace.catalog.storage;
  if (plan.writeKey !== plan.finalKey) await storage.move(plan.writeKey, plan.finalKey);
  faultPoint('backup:renamed');
  ctx.reporter.step('Recording metadata');
  await workspace.catalog.add(entry);
  faultPoint('backup:cataloged');
  if (plan.localCopy) await keepLocalCopy(plan.localCopy, plan, entry, ctx);
}

function reportCreated(
  entry: BackupEntry,
  result: BackupResultData,
  compression: Compression,
  ctx: OperationContext,
): void {
  ctx.reporter.complete(
    BANNER_TITLE,
    {
      Environment: entry.environment,
      'Backup ID': entry.backup_id,
      File: entry.file_path,
      Size: `${result.size_human}${entry.compressed ? ` (${compression}, ratio ${entry.compression_ratio})` : ''}`,
      Migrations: describeMigrations(entry.migrations),
      Pinned: entry.pinned ? 'yes (cleanup never deletes it)' : undefined,
      Retention: `${entry.retention_days} days (expires: ${entry.expires_at.slice(0, 10)})`,
      Duration: humanDuration(entry.duration_ms),
    },
    ['To restore from this backup:', `  ${result.restore_command}`],
  );
}

/**
 * The backup is committed in the bucket; its local copy (file and manifest, as a local backup
 * would have them) is a convenience, so a failure here is a warning, not a failed backup.
 */
async function keepLocalCopy(
  local: LocalStorage,
  plan: Plan,
  entry: BackupEntry,
  ctx: OperationContext,
): Promise<void> {
  try {
    await local.move(plan.partialKey, plan.finalKey);
    await local.put(`${plan.directory}${plan.id}${MANIFEST_SUFFIX}`, serializeManifest(entry));
    ctx.reporter.step(`Local copy kept: ${local.locationOf(plan.finalKey)}`);
  } catch (error) {
    await local.delete(plan.partialKey).catch(() => undefined);
    ctx.reporter.warn(`The backup is in the bucket, but its local copy could not be kept: ${(error as Error).message}`);
  }
}

/**
 * A failure after the rename (the catalog could not be written: lock timeout, full disk, I/O
 * error) must not leave a file and manifest that no entry describes: a rebuild from manifests
 * would later record a backup this run reported as failed. They stay only if the entry did reach
 * the catalog file (a failure after its rename). True when nothing of the backup is left.
 */
async function discardIfUnrecorded(storage: Storage, plan: Plan): Promise<boolean> {
  const manifestKey = `${plan.directory}${plan.id}${MANIFEST_SUFFIX}`;
  if (await isRecorded(storage, plan.id, manifestKey)) return false;
  await storage.delete(plan.finalKey);
  await storage.delete(manifestKey);
  return true;
}

/** Locally the catalog file says what is recorded; in an object store, the manifest (the commit) does. */
async function isRecorded(storage: Storage, id: string, manifestKey: string): Promise<boolean> {
  if (storage.kind !== 'local') return (await storage.stat(manifestKey).catch(() => undefined)) !== undefined;
  const data = await storage.read(CATALOG_FILE_NAME).catch(() => undefined);
  const onDisk = data === undefined ? undefined : parseCatalog(data.toString('utf8'));
  return onDisk?.kind === 'valid' && onDisk.entries.some((entry) => entry.backup_id === id);
}

/** What an unprivileged user may still write there (df's "Available"); a system call, not a spawned `df`. */
async function availableBytes(directory: string): Promise<number> {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

async function checkSpace(
  ctx: OperationContext,
  directory: string,
  server: ServerInfo,
  compression: Compression,
  workspace: Workspace,
) {
  const estimate = Math.ceil(
    server.databaseSizeBytes * SIZE_BUFFER * (compression === 'none' ? 1 : COMPRESSED_SIZE_FACTOR),
  );
  const free = ctx.freeSpace ? await ctx.freeSpace(directory) : await availableBytes(directory);
  if (free < estimate) {
    const gb = (bytes: number) => Math.round((bytes / 1024 ** 3) * 100) / 100;
    throw new FaberError(
      'INSUFFICIENT_DISK_SPACE',
      `Insufficient disk space for backup: need about ${humanBytes(estimate)}, ${humanBytes(free)} available`,
      {
        result: {
          required_space_gb: gb(estimate),
          available_space_gb: gb(free),
          backup_size_estimate_gb: gb(server.databaseSizeBytes),
          backup_directory: directory,
        },
        suggestions: [
          `Free up disk space: df -h ${directory}`,
          `Clean up old backups: nx run <project>:cleanup-backups:${workspace.environment.name}`,
          compression === 'none' ? 'Use compression: --compression=zstd' : 'Point backup.directory at a larger disk',
        ],
      },
    );
  }
  ctx.reporter.step(`Disk space check: ${humanBytes(free)} available (need ${humanBytes(estimate)})`);
}

async function confirmIfRequired(
  ctx: OperationContext,
  workspace: Workspace,
  server: ServerInfo,
  options: BackupOptions,
) {
  const threshold = workspace.config.backup.confirm_above_bytes;
  if (!workspace.environment.settings.require_approval || server.databaseSizeBytes <= threshold || options.yes) return;
  const question = `The ${workspace.environment.name} database is ${humanBytes(server.databaseSizeBytes)} (above ${humanBytes(threshold)}). Back it up now?`;
  if (ctx.interactive && ctx.confirm) {
    if (await ctx.confirm(question)) return;
    throw new FaberError('CANCELLED', 'Backup cancelled at the confirmation prompt', {
      suggestions: ['Run it again and answer yes, or pass --yes'],
    });
  }
  throw new FaberError(
    'CONFIRMATION_REQUIRED',
    `${question} Confirmation is required and there is no terminal to ask`,
    {
      result: { database_size_bytes: server.databaseSizeBytes, confirm_above_bytes: threshold },
      suggestions: ['Pass --yes to confirm (e.g. in CI)', 'Or raise backup.confirm_above_bytes in config.json'],
    },
  );
}

/**
 * Picks the first free id (`-2`, `-3`, … within the same second) and claims it: unique across the
 * catalog, and its .partial file (or directory) created exclusively.
 */
async function reserveBackupId(
  storage: Storage,
  directory: string,
  now: Date,
  label: string | null,
  handler: DatabaseHandler,
  format: StoredFormat,
  compression: Compression,
  encryption: EncryptionConfig | undefined,
) {
  const base = backupId(now, label);
  const existing = new Set((await storage.list(directory, { shallow: true })).map((object) => baseName(object.key)));
  const candidates = function* () {
    for (let n = 1; n < 1000; n++) yield n === 1 ? base : `${base}-${n}`;
  };
  const claimPartial = async (id: string): Promise<boolean> => {
    const names = fileNames(id, handler, format, compression, encryption !== undefined);
    if (existing.has(names.final) || existing.has(names.partial) || existing.has(`${id}${MANIFEST_SUFFIX}`))
      return false;
    const partialKey = `${directory}${names.partial}`;
    if (format === 'directory') return localOnly(storage, format).createDirectory(partialKey);
    // An object store has no .partial: the id's reservation is the claim, and the upload goes to the final key.
    if (storage.kind !== 'local') return true;
    return storage.putIfAbsent(partialKey, '', { parents: 'require' });
  };
  const reservation = await reserveId(storage, candidates(), claimPartial);
  if (!reservation) throw new FaberError('BACKUP_FAILED', `No free backup id for ${base}`);
  const names = fileNames(reservation.id, handler, format, compression, encryption !== undefined);
  const writeKey = storage.kind === 'local' ? `${directory}${names.partial}` : `${directory}${names.final}`;
  return {
    id: reservation.id,
    release: reservation.release,
    label,
    format,
    compression,
    encryption,
    directory,
    finalKey: `${directory}${names.final}`,
    partialKey: `${directory}${names.partial}`,
    writeKey,
    written: () => backupFileOf({ storage }, { backup_id: reservation.id, file_path: storage.locationOf(writeKey) }),
    finalPath: storage.localPath(`${directory}${names.final}`) ?? storage.locationOf(`${directory}${names.final}`),
    partialPath:
      storage.localPath(`${directory}${names.partial}`) ?? storage.locationOf(`${directory}${names.partial}`),
  };
}

/** pg_dump's directory format writes many files into a directory: only a local store has one. */
function localOnly(storage: Storage, format: StoredFormat): LocalStorage {
  if (storage instanceof LocalStorage) return storage;
  throw new FaberError(
    'INVALID_OPTION',
    `The ${format} format needs a local backup directory; ${storage.description} is remote`,
    {
      result: { format, storage: storage.kind },
      suggestions: ['Use --format=custom or --format=sql with remote storage'],
    },
  );
}

function fileNames(
  id: string,
  handler: DatabaseHandler,
  format: StoredFormat,
  compression: Compression,
  encrypted: boolean,
) {
  const final =
    format === 'directory'
      ? id
      : `${id}.${handler.extension(format)}${compressionSuffix(compression)}${encrypted ? AGE_SUFFIX : ''}`;
  return { final, partial: `${final}.partial` };
}

interface Dumped {
  stats: ArchiveStats;
  session: DumpSession;
  snapshot: DatabaseSnapshot;
  fileChecksums?: Record<string, string>;
  /** Single-file backups: the checks made while writing, completed by verifyPartial. */
  inPass?: InPassVerification;
}

async function dump(
  handler: DatabaseHandler,
  workspace: Workspace,
  plan: Plan,
  server: ServerInfo,
  ctx: OperationContext,
  run: OperationRun,
): Promise<Dumped> {
  const started = Date.now();
  const encryption = plan.encryption ? await prepareEncryption(plan.encryption.recipients) : undefined;
  const session = await handler.startDump({
    format: plan.format,
    ...(plan.format === 'directory'
      ? { directory: plan.partialPath, parallelJobs: effectiveParallelJobs(workspace.config) }
      : {}),
    compression: plan.compression,
    migrations: { tool: workspace.config.database.migration_tool, table: workspace.config.migrations.table },
    signal: run.signal,
  });
  faultPoint('backup:dump-started');
  let inPass: InPassVerification | undefined;
  try {
    if (!session.stream) {
      await session.finished;
      const files = await hashDirectory(plan.partialPath);
      const size = Object.values(files.sizes).reduce((sum, bytes) => sum + bytes, 0);
      // A directory is stored as written: the same digest for the bytes on disk and the content.
      const digest = directoryDigest(files.checksums);
      const stats = {
        uncompressedBytes: size,
        sizeBytes: size,
        sha256: digest,
        contentSha256: digest,
        decodeCheck: { checked: false, problem: null },
      };
      return { stats, session, snapshot: await session.snapshot, fileChecksums: files.checksums };
    }
    const onProgress = (bytes: number) => {
      faultPointPast('backup:streaming', bytes);
      ctx.reporter.progress({ bytes, expectedBytes: server.databaseSizeBytes, elapsedMs: Date.now() - started });
    };
    const level =
      plan.compression === 'zstd'
        ? (workspace.config.backup.compression_level ?? DEFAULT_ZSTD_LEVEL)
        : workspace.config.backup.compression_level;
    inPass = startInPassVerification({
      provider: handler.provider,
      format: plan.format,
      compression: plan.compression,
      env: plan.toolEnv ?? ctx.env,
      signal: run.signal,
    });
    const upload = await workspace.catalog.storage.createWriter(plan.writeKey);
    const sink = plan.localCopy ? teeWriter(upload, await plan.localCopy.createWriter(plan.partialKey)) : upload;
    const archived = writeArchive(session.stream, sink, {
      compression: plan.compression,
      ...(level ? { level } : {}),
      signal: run.signal,
      onProgress,
      contentTaps: inPass.taps,
      ...(encryption ? { encryption } : {}),
    });
    // When our side breaks, the dump tool then fails on its closed pipe: report the cause, not that echo.
    const [archive, tool] = await Promise.allSettled([
      archived.catch(async (error: unknown) => {
        await session.dispose();
        throw error;
      }),
      session.finished,
    ]);
    if (archive.status === 'rejected') throw archive.reason;
    if (tool.status === 'rejected') throw tool.reason;
    return { stats: archive.value, session, snapshot: await session.snapshot, inPass };
  } catch (error) {
    await inPass?.discard();
    if (run.signal.aborted) throw run.signal.reason ?? error;
    throw dumpFailure(error);
  } finally {
    await session.dispose();
  }
}

/** A stream stage that broke (compressor, file write) is a failed backup, unless the disk says more. */
function dumpFailure(error: unknown): FaberError {
  if (error instanceof FaberError) return error;
  const failure = toFaberError(error, 'BACKUP_FAILED');
  if (failure.suggestions.length > 0) return failure;
  return new FaberError(failure.code, `The backup stream failed: ${failure.message}`, {
    cause: error,
    suggestions: ['Retry the backup', 'Check the disk (df -h, dmesg) and the database server log'],
  });
}

async function verifyPartial(
  plan: Plan,
  { stats, fileChecksums, inPass, session }: Dumped,
  handler: DatabaseHandler,
  ctx: OperationContext,
  run: OperationRun,
): Promise<VerifyReport> {
  const written = await plan.written();
  const report = inPass
    ? await inPass.finish(written, stats)
    : await verifyBackupFile({
        path: written,
        provider: handler.provider,
        format: plan.format,
        compression: plan.format === 'directory' ? 'none' : plan.compression,
        expected: {
          sizeBytes: stats.sizeBytes,
          sha256: stats.sha256,
          contentSha256: stats.contentSha256,
          files: fileChecksums,
        },
        env: plan.toolEnv ?? ctx.env,
        signal: run.signal,
      });
  // Every check above saw the plaintext as it was written; the stored file is age's, whose header is checked here.
  if (plan.encryption && inPass) await checkStoredAgeHeader(written, plan.encryption.recipients.length, report);
  if (!report.passed) {
    throw new FaberError(
      'VERIFICATION_FAILED',
      `Backup verification failed - file may be corrupted: ${report.problems.join('; ')}`,
      {
        result: {
          backup_file: path.basename(plan.finalPath),
          problems: report.problems,
          size_bytes: report.size_bytes,
          file_readable: report.file_readable,
        },
        suggestions: [
          'Retry the backup',
          'Check disk space and the disk for errors (dmesg)',
          'Verify the database connection is stable',
        ],
      },
    );
  }
  report.checks.push(...(session.checks ?? []));
  for (const check of report.checks) ctx.reporter.info(`✓ ${check}`);
  return report;
}

interface EntryFacts {
  plan: Plan;
  workspace: Workspace;
  ctx: OperationContext;
  handler: DatabaseHandler;
  source: BackupSource;
  server: ServerInfo;
  dumped: Dumped;
  report: VerifyReport;
  now: Date;
  started: number;
  tags: string[];
  migrations: MigrationState;
  provenance: Provenance;
  pinned: boolean;
}

function buildEntry(facts: EntryFacts): BackupEntry {
  const { plan, workspace, ctx, handler, server, dumped, report, now } = facts;
  const { stats } = dumped;
  const verifiedAt = currentTime(ctx).toISOString();
  const isDirectory = plan.format === 'directory';
  return {
    backup_id: plan.id,
    project: ctx.projectName,
    environment: workspace.environment.name,
    provider: handler.provider,
    database_name: handler.engine.displayName(handler.live.name),
    source: facts.source,
    created_at: now.toISOString(),
    label: plan.label,
    reason: plan.reason,
    file_path: workspace.catalog.storage.locationOf(plan.finalKey),
    size_bytes: stats.sizeBytes,
    uncompressed_bytes: stats.uncompressedBytes,
    compressed: plan.compression !== 'none',
    compression: isDirectory ? (plan.compression === 'none' ? 'none' : 'gzip') : plan.compression,
    compression_ratio:
      stats.uncompressedBytes > 0 ? Math.round((stats.sizeBytes / stats.uncompressedBytes) * 1000) / 1000 : 1,
    format: plan.format,
    backup_method: handler.backupMethod(plan.format),
    checksum: {
      algorithm: 'sha256',
      value: stats.sha256,
      ...(isDirectory ? { files: dumped.fileChecksums ?? {} } : { content_value: stats.contentSha256 }),
    },
    ...(plan.encryption ? { encryption: recordEncryption(plan.encryption) } : {}),
    tool_versions: { client: `${server.clientTool} ${server.clientVersion}`, server: server.serverVersion },
    migrations: facts.migrations,
    table_row_counts: dumped.snapshot.tableRowCounts,
    retention_days: plan.retentionDays,
    expires_at: dayjs(now).add(plan.retentionDays, 'day').toISOString(),
    status: 'valid',
    pinned: facts.pinned,
    verification: {
      integrity_check: 'passed',
      file_readable: report.file_readable,
      file_exists: report.file_exists,
      verified_at: verifiedAt,
      restore_test: null,
      checks: report.checks,
    },
    duration_ms: Date.now() - facts.started,
    created_by: `${PACKAGE_NAME}@${PACKAGE_VERSION} (${safeUserName()})`,
    tags: [...new Set([workspace.environment.name, ...(plan.reason ? [plan.reason] : []), ...facts.tags])],
    provenance: facts.provenance,
  };
}

/** Whether another variable's URL is the environment's own database after all (unset: it is not). */
function isEnvironmentConnection(connection: ConnectionInfo, workspace: Workspace, ctx: OperationContext): boolean {
  let own: ConnectionInfo;
  try {
    own = resolveConnection(workspace.config, workspace.environment, ctx.env, ctx.workspaceRoot);
  } catch {
    return false;
  }
  return sameDatabase(sourceOf(connection, ctx.workspaceRoot, true), sourceOf(own, ctx.workspaceRoot, true));
}

/** A pre-migration backup records which migrations were about to run, next to the applied ones. */
async function recordedMigrations(
  state: MigrationState,
  options: BackupOptions,
  workspace: Workspace,
  ctx: OperationContext,
): Promise<MigrationState> {
  if (options.reason !== 'pre-migration' && !options.skipIfNothingPending) return state;
  return withPending(state, await pendingFor(state, workspace, ctx));
}

function safeUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

function resultData(entry: BackupEntry, projectName: string): BackupResultData {
  return {
    backup_id: entry.backup_id,
    label: entry.label,
    reason: entry.reason,
    file_path: entry.file_path,
    size_bytes: entry.size_bytes,
    size_human: humanBytes(entry.size_bytes),
    compressed: entry.compressed,
    compression: entry.compression,
    compression_ratio: entry.compression_ratio,
    format: entry.format,
    checksum: entry.checksum,
    migrations: {
      applied_count: entry.migrations.applied_count,
      last_migration: entry.migrations.last_migration,
      ...(entry.migrations.pending ? { pending: entry.migrations.pending } : {}),
    },
    pinned: entry.pinned,
    retention_days: entry.retention_days,
    expires_at: entry.expires_at,
    verification: { integrity_check: 'passed', file_readable: entry.verification.file_readable },
    duration_ms: entry.duration_ms,
    restore_command: `nx run ${projectName}:restore:${entry.environment} --from=${entry.backup_id}`,
  };
}
