import os from 'node:os';
import type { Catalog } from '../catalog/catalog.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { withoutVariables } from '../config/environment.ts';
import type { FaberConfig } from '../config/schema.ts';
import type { DatabaseHandler, DatabaseSnapshot, DatabaseTarget, MigrationLookup } from '../handlers/handler.ts';
import { canDecrypt, describeMismatch, loadIdentities, requireIdentities, type RecordedEncryption } from '../pipeline/encryption.ts';
import type { EncryptedRead } from '../pipeline/verify.ts';
import { openDecodedStream, verifyBackupFile, type VerifyReport } from '../pipeline/verify.ts';
import type { Reporter } from '../output/reporter.ts';

/**
 * Re-checks a cataloged backup against what the catalog recorded when it was written. An
 * encrypted one is decrypted when its identity variable holds one of its recipients' keys, else
 * only its bytes and age header are checked (and the report says why the content was not).
 */
export async function verifyEntryFile(entry: BackupEntry, filePath: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<VerifyReport> {
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
export async function loadingIdentities(entry: BackupEntry, env: NodeJS.ProcessEnv, operation: string): Promise<string[] | undefined> {
  return entry.encryption ? requireIdentities(entry.encryption, env, entry.backup_id, operation) : undefined;
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
    checks: report.passed ? report.checks : [...report.checks, ...report.problems.map((problem) => `FAILED: ${problem}`)],
  };
}

/** Records a file check in the catalog (under its lock) and the entry's manifest. */
export function recordFileCheck(catalog: Catalog, entry: BackupEntry, report: VerifyReport, now: Date): Promise<BackupEntry> {
  return catalog.patch(entry.backup_id, (current) => applyFileCheck(current, report, now));
}

export function migrationLookup(config: FaberConfig): MigrationLookup {
  return { tool: config.database.migration_tool, table: config.migrations.table };
}

/** Loads a backup into an existing empty target: single-file formats stream through the decoder, no uncompressed copy. */
export async function restoreInto(
  handler: DatabaseHandler,
  target: DatabaseTarget,
  entry: BackupEntry,
  filePath: string,
  config: FaberConfig,
  signal: AbortSignal,
  reporter?: Reporter,
  identities?: string[],
): Promise<void> {
  if (entry.format === 'directory') {
    await handler.restore(target, { format: 'directory', directory: filePath, parallelJobs: config.backup.parallel_jobs ?? defaultJobs(), signal });
    return;
  }
  const started = Date.now();
  const onProgress = reporter && ((bytes: number) => reporter.progress({ bytes, expectedBytes: entry.uncompressed_bytes, elapsedMs: Date.now() - started, action: 'loaded' }));
  const stream = openDecodedStream(filePath, entry.compression, onProgress, identities);
  try {
    await handler.restore(target, { format: entry.format, stream, signal, ...(reporter ? { onWarning: (message: string) => reporter.warn(message) } : {}) });
  } finally {
    stream.destroy();
  }
}

function defaultJobs(): number {
  return Math.max(1, Math.min(8, os.availableParallelism()));
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
    differences.push(`last migration is ${actual.last_migration ?? 'none'}, ${expected.last_migration ?? 'none'} was recorded`);
  }
  return differences;
}

export function describeSnapshot(snapshot: DatabaseSnapshot): string {
  const tables = Object.keys(snapshot.tableRowCounts).length;
  const rows = Object.values(snapshot.tableRowCounts).reduce((sum, count) => sum + count, 0);
  return `${tables} table${tables === 1 ? '' : 's'}, ${rows} row${rows === 1 ? '' : 's'}, ${snapshot.migrations.applied_count} migration${snapshot.migrations.applied_count === 1 ? '' : 's'} applied`;
}
