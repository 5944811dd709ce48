import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Catalog } from '../catalog/catalog.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { effectiveParallelJobs, withoutVariables } from '../config/environment.ts';
import type { FaberConfig } from '../config/schema.ts';
import type { DatabaseHandler, DatabaseSnapshot, DatabaseTarget, MigrationLookup } from '../handlers/handler.ts';
import { FaberError } from '../output/errors.ts';
import {
  canDecrypt,
  describeMismatch,
  loadIdentities,
  requireIdentities,
  type RecordedEncryption,
} from '../pipeline/encryption.ts';
import {
  openDecodedStream,
  verifyBackupFile,
  verifyStoredBytes,
  type BackupFile,
  type DecodedDigests,
  type EncryptedRead,
  type VerifyReport,
} from '../pipeline/verify.ts';
import type { Reporter } from '../output/reporter.ts';

/**
 * Re-checks a cataloged backup against what the catalog recorded when it was written. An
 * encrypted one is decrypted when its identity variable holds one of its recipients' keys, else
 * only its bytes and age header are checked (and the report says why the content was not).
 */
export async function verifyEntryFile(
  entry: BackupEntry,
  filePath: BackupFile,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<VerifyReport> {
  const encryption = entry.encryption && (await encryptedRead(entry.encryption, env));
  return verifyBackupFile({
    path: filePath,
    provider: entry.provider,
    format: entry.format,
    // A directory backup's files are compressed by pg_dump itself and hashed as they are.
    compression: entry.format === 'directory' ? 'none' : entry.compression,
    expected: {
      sizeBytes: entry.size_bytes,
      sha256: entry.checksum.value,
      contentSha256: entry.checksum.content_value,
      files: entry.checksum.files,
    },
    // pg_restore --list needs PATH, never the age key.
    env: entry.encryption ? withoutVariables(env, [entry.encryption.identity_env]) : env,
    ...(signal ? { signal } : {}),
    ...(encryption ? { encryption } : {}),
  });
}

/** A key of another recipient is no reason to fail a file check (old backups after a key rotation): it says it could not decode. */
async function encryptedRead(recorded: RecordedEncryption, env: NodeJS.ProcessEnv): Promise<EncryptedRead> {
  const loaded = await loadIdentities(recorded, env);
  const read = { recipients: recorded.recipients.length, identityEnv: recorded.identity_env };
  if (!loaded) return { ...read, withoutIdentity: `$${recorded.identity_env} is not set` };
  if (!canDecrypt(loaded, recorded)) return { ...read, withoutIdentity: describeMismatch(loaded, recorded) };
  return { ...read, identities: loaded.identities };
}

/** The identities an operation that loads the backup needs: none for an unencrypted one, else ENCRYPTION_KEY_MISSING/WRONG. */
export async function loadingIdentities(
  entry: BackupEntry,
  env: NodeJS.ProcessEnv,
  operation: string,
): Promise<string[] | undefined> {
  return entry.encryption ? requireIdentities(entry.encryption, env, entry.backup_id, operation) : undefined;
}

/**
 * Before a restore loads a backup: the stored bytes' size and SHA-256 only, when the catalog has
 * the decoded content's checksum for the load to prove (compareLoadedDigests); otherwise, and for
 * directories, the full check.
 */
export function checkBeforeLoad(
  entry: BackupEntry,
  filePath: BackupFile,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<VerifyReport> {
  if (entry.format === 'directory' || !entry.checksum.content_value)
    return verifyEntryFile(entry, filePath, env, signal);
  return verifyStoredBytes({
    path: filePath,
    expected: { sizeBytes: entry.size_bytes, sha256: entry.checksum.value },
    ...(signal ? { signal } : {}),
  });
}

/**
 * Writes a file check's outcome into a catalog entry: `valid` when it passed, `missing` when the
 * file is gone, `verification_failed` otherwise. `verified_at` is the last time the backup passed.
 */
export function applyFileCheck(entry: BackupEntry, report: VerifyReport, now: Date): void {
  entry.status = report.passed ? 'valid' : report.file_exists ? 'verification_failed' : 'missing';
  entry.verification = {
    ...entry.verification,
    integrity_check: report.passed ? 'passed' : 'failed',
    file_exists: report.file_exists,
    file_readable: report.file_readable,
    verified_at: report.passed ? now.toISOString() : entry.verification.verified_at,
    checks: report.passed
      ? report.checks
      : [...report.checks, ...report.problems.map((problem) => `FAILED: ${problem}`)],
  };
}

/** Records a file check in the catalog (under its lock) and the entry's manifest. */
export function recordFileCheck(
  catalog: Catalog,
  entry: BackupEntry,
  report: VerifyReport,
  now: Date,
): Promise<BackupEntry> {
  return catalog.patch(entry.backup_id, (current) => applyFileCheck(current, report, now));
}

export function migrationLookup(config: FaberConfig): MigrationLookup {
  return { tool: config.database.migration_tool, table: config.migrations.table };
}

/**
 * Loads a backup into an existing empty target: single-file formats stream through the decoder, no
 * uncompressed copy. Returns what the load read of them (the stored and the decoded bytes' digests,
 * the whole file's even when the tool stopped reading early), for the caller to compare with the record.
 */
export async function restoreInto(
  handler: DatabaseHandler,
  target: DatabaseTarget,
  entry: BackupEntry,
  filePath: BackupFile,
  config: FaberConfig,
  signal: AbortSignal,
  reporter?: Reporter,
  identities?: string[],
): Promise<DecodedDigests | undefined> {
  if (entry.format === 'directory') {
    if (typeof filePath !== 'string')
      throw new Error(`A directory-format backup must be a local directory, not ${filePath.location}`);
    await handler.restore(target, {
      format: 'directory',
      directory: filePath,
      parallelJobs: effectiveParallelJobs(config),
      signal,
    });
    return undefined;
  }
  const started = Date.now();
  const onProgress =
    reporter &&
    ((bytes: number) =>
      reporter.progress({
        bytes,
        expectedBytes: entry.uncompressed_bytes,
        elapsedMs: Date.now() - started,
        action: 'loaded',
      }));
  const decoded = openDecodedStream(filePath, entry.compression, onProgress, identities);
  try {
    await handler.restore(target, {
      format: entry.format,
      stream: decoded.stream,
      signal,
      ...(reporter ? { onWarning: (message: string) => reporter.warn(message) } : {}),
    });
    await readToEnd(decoded.stream);
    return decoded.digests();
  } catch (error) {
    if (decoded.decodeError) throw undecodable(entry, decoded.decodeError);
    throw error;
  } finally {
    decoded.stream.destroy();
  }
}

/** The rest of a stream the tool did not read (pg_restore may stop before the end), so its digest covers every byte. */
async function readToEnd(stream: Readable): Promise<void> {
  if (stream.readableEnded) return;
  if (stream.destroyed) throw new FaberError('RESTORE_FAILED', 'The backup stream was closed before its end');
  stream.resume();
  await finished(stream);
}

function undecodable(entry: BackupEntry, error: Error): FaberError {
  return new FaberError('VERIFICATION_FAILED', `The backup ${entry.backup_id} does not decode: ${error.message}`, {
    cause: error,
    result: { backup_id: entry.backup_id, file_path: entry.file_path },
    suggestions: ['Pick another backup to restore (list-backups), and re-check this one with verify-backup'],
  });
}

/**
 * What a load proved about the backup's bytes, compared with what the catalog recorded: the stored
 * file is still the one checked before loading, and it decoded to exactly the dump that was written.
 */
export function compareLoadedDigests(
  entry: BackupEntry,
  digests: DecodedDigests,
  report: Pick<VerifyReport, 'checks' | 'problems'>,
): void {
  if (digests.fileSha256 !== entry.checksum.value)
    report.problems.push(
      `the file changed while it was loaded: its checksum is now ${digests.fileSha256}, ${entry.checksum.value} was recorded`,
    );
  const expected = entry.checksum.content_value;
  if (!expected) return;
  if (digests.contentSha256 === expected)
    report.checks.push('decoded content checksum matches (checked while loading, before the swap)');
  else
    report.problems.push(
      `decoded content checksum mismatch: expected ${expected}, got ${digests.contentSha256} (${digests.contentBytes} bytes decoded)`,
    );
}

/**
 * Differences between a restored database and what was recorded at backup time: tables missing
 * or extra, row counts, migration state. Empty when they agree.
 */
export function compareWithRecorded(entry: BackupEntry, restored: DatabaseSnapshot): string[] {
  const differences: string[] = [];
  const recorded = entry.table_row_counts;
  if (recorded) {
    for (const [table, rows] of Object.entries(recorded)) {
      const actual = restored.tableRowCounts[table];
      if (actual === undefined) differences.push(`table ${table} is missing`);
      else if (actual !== rows) differences.push(`table ${table} has ${actual} rows, ${rows} were recorded`);
    }
    for (const table of Object.keys(restored.tableRowCounts)) {
      if (!(table in recorded)) differences.push(`table ${table} was not in the backup's record`);
    }
  }
  const expected = entry.migrations;
  const actual = restored.migrations;
  if (actual.applied_count !== expected.applied_count) {
    differences.push(`${actual.applied_count} migrations applied, ${expected.applied_count} were recorded`);
  } else if (actual.last_migration !== expected.last_migration) {
    differences.push(
      `last migration is ${actual.last_migration ?? 'none'}, ${expected.last_migration ?? 'none'} was recorded`,
    );
  }
  return differences;
}

export function describeSnapshot(snapshot: DatabaseSnapshot): string {
  const tables = Object.keys(snapshot.tableRowCounts).length;
  const rows = Object.values(snapshot.tableRowCounts).reduce((sum, count) => sum + count, 0);
  return `${tables} table${tables === 1 ? '' : 's'}, ${rows} row${rows === 1 ? '' : 's'}, ${snapshot.migrations.applied_count} migration${snapshot.migrations.applied_count === 1 ? '' : 's'} applied`;
}
