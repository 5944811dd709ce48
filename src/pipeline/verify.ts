import { createReadStream, createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import type { Compression, Provider } from '../config/schema.ts';
import type { StoredFormat } from '../catalog/formats.ts';
import { createDecompressor } from './compression.ts';
import { hashDirectory } from './directory.ts';
import { AgeHeaderTap, createDecryptStage } from './encryption.ts';
import { EdgeTap, HashingTap } from './taps.ts';

export interface VerifyTarget {
  /** Absolute path of the backup file (or directory for the directory format). */
  path: string;
  provider: Provider;
  format: StoredFormat;
  compression: Compression;
  expected: {
    sizeBytes: number;
    sha256: string;
    contentSha256?: string | undefined;
    files?: Record<string, string> | undefined;
  };
  /** Environment for pg_restore (PATH). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** An age-encrypted file: decrypted with `identities`, or without them only hashed and its header checked. */
  encryption?: EncryptedRead | undefined;
}

export interface EncryptedRead {
  identities?: string[] | undefined;
  /** How many recipients the file was encrypted for. */
  recipients: number;
  identityEnv: string;
  /** Why there are no identities (shown in the report's note). */
  withoutIdentity?: string;
}

export interface VerifyReport {
  passed: boolean;
  file_exists: boolean;
  file_readable: boolean;
  size_bytes: number;
  checks: string[];
  problems: string[];
  /** What could not be checked, and why (e.g. an encrypted file read without its identity). */
  notes?: string[];
}

/** Markers the dump tools write last: a dump without one was cut short. */
const SQL_TRAILERS: Record<Provider, string[]> = {
  postgresql: ['-- PostgreSQL database dump complete'],
  mysql: ['-- Dump completed'],
  sqlite: [],
};
const PGDMP_MAGIC = Buffer.from('PGDMP');
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0');

/**
 * Re-checks a backup in one read: size, SHA-256 of the bytes on disk, a full decode of the
 * compressed stream (whose content hash must match the one recorded when it was written), and a
 * format check. The file is read through the page cache, so a check right after writing mostly
 * costs CPU, not disk reads.
 */
export async function verifyBackupFile(target: VerifyTarget): Promise<VerifyReport> {
  const report: VerifyReport = { passed: false, file_exists: false, file_readable: false, size_bytes: 0, checks: [], problems: [] };
  const info = await stat(target.path).catch(() => undefined);
  if (!info) {
    report.problems.push(`the backup ${target.format === 'directory' ? 'directory' : 'file'} does not exist: ${target.path}`);
    return report;
  }
  report.file_exists = true;
  if (target.format === 'directory') await verifyDirectory(target, report);
  else await verifySingleFile(target, info.size, report);
  report.passed = report.problems.length === 0;
  return report;
}

async function verifySingleFile(target: VerifyTarget, size: number, report: VerifyReport): Promise<void> {
  report.size_bytes = size;
  if (size === 0) report.problems.push('the file is empty');
  if (size !== target.expected.sizeBytes) {
    report.problems.push(`size is ${size} bytes, the catalog recorded ${target.expected.sizeBytes}`);
  }
  const fileHash = new HashingTap();
  const encryption = target.encryption;
  if (encryption && !encryption.identities) {
    await verifyCiphertextOnly(target, encryption, fileHash, report);
    return;
  }
  const source = [createReadStream(target.path, { highWaterMark: 1024 * 1024 }), fileHash, ...(encryption?.identities ? [createDecryptStage(encryption.identities)] : [])];
  const decoded = await checkDecodedContent(source, target, report, (contentSha256) => {
    compareHash('file checksum (sha256)', fileHash.digest(), target.expected.sha256, report);
    if (encryption) report.checks.push('age payload decrypts and authenticates');
    if (target.expected.contentSha256) compareHash('decoded content checksum', contentSha256, target.expected.contentSha256, report);
    else if (target.compression !== 'none') report.checks.push(`${target.compression} stream decodes`);
  });
  report.file_readable = decoded || fileHash.bytes === size;
}

/** What can be decoded from a compressed (plaintext) stream: which decoder, and the format to check. */
export type DecodeTarget = Pick<VerifyTarget, 'provider' | 'format' | 'compression' | 'env' | 'signal' | 'encryption'>;

/**
 * Decodes a compressed dump from `sources` and checks it: `onDecoded` gets the decoded content's
 * SHA-256 once the stream decoded completely, then the dump's edges and format are checked.
 * False (with the reason in `report.problems`) when the stream does not decode.
 */
export async function checkDecodedContent(
  sources: ReadonlyArray<Readable | Duplex>,
  target: DecodeTarget,
  report: VerifyReport,
  onDecoded: (contentSha256: string) => void,
): Promise<boolean> {
  const contentHash = new HashingTap();
  const edges = new EdgeTap(64 * 1024);
  const formatSink = await createFormatSink(target);
  try {
    await pipeline([...sources, createDecompressor(target.compression), contentHash, edges, formatSink.writable], ...(target.signal ? [{ signal: target.signal }] : []));
  } catch (error) {
    const stream = [target.encryption ? 'age' : '', target.compression === 'none' ? '' : target.compression].filter(Boolean).join('/');
    report.problems.push(`the ${stream ? `${stream} stream` : 'file'} does not decode: ${(error as Error).message}`);
    await formatSink.discard();
    return false;
  }
  onDecoded(contentHash.digest());
  checkEdges(target, edges, report);
  await formatSink.finish(report);
  return true;
}

/**
 * Without the identity: every byte is hashed against the recorded checksum and the age header is
 * checked, but the payload cannot be decrypted, so the content is not decoded (and it says so).
 */
async function verifyCiphertextOnly(target: VerifyTarget, encryption: EncryptedRead, fileHash: HashingTap, report: VerifyReport): Promise<void> {
  const header = new AgeHeaderTap();
  const discard = new Writable({ highWaterMark: 1024 * 1024, write: (_chunk, _encoding, callback) => callback() });
  try {
    await pipeline([createReadStream(target.path, { highWaterMark: 1024 * 1024 }), fileHash, header, discard], ...(target.signal ? [{ signal: target.signal }] : []));
  } catch (error) {
    report.problems.push(`the file cannot be read: ${(error as Error).message}`);
    return;
  }
  report.file_readable = true;
  compareHash('file checksum (sha256)', fileHash.digest(), target.expected.sha256, report);
  const facts = header.facts();
  if (facts.problem) report.problems.push(facts.problem);
  else if (facts.x25519Stanzas !== encryption.recipients || facts.otherStanzas > 0) {
    report.problems.push(`the age header has ${facts.x25519Stanzas} X25519 recipient stanzas (and ${facts.otherStanzas} others), ${encryption.recipients} recipients were recorded`);
  } else report.checks.push(`age header well-formed (${facts.x25519Stanzas} X25519 recipient${facts.x25519Stanzas === 1 ? '' : 's'})`);
  (report.notes ??= []).push(`not decoded: ${encryption.withoutIdentity ?? `$${encryption.identityEnv} is not set`}, so the encrypted content could not be decrypted and checked (set $${encryption.identityEnv} to a recipient's key to verify the content too)`);
}

function compareHash(name: string, actual: string, expected: string, report: VerifyReport): void {
  if (actual === expected) report.checks.push(`${name} matches`);
  else report.problems.push(`${name} mismatch: expected ${expected}, got ${actual}`);
}

function checkEdges(target: DecodeTarget, edges: EdgeTap, report: VerifyReport): void {
  if (target.format === 'sql') {
    const tail = edges.tail.toString('utf8');
    const trailers = SQL_TRAILERS[target.provider];
    if (trailers.some((marker) => tail.includes(marker))) report.checks.push('dump trailer present (dump completed)');
    else report.problems.push('the dump has no completion trailer: it was cut short');
  } else if (target.format === 'custom') {
    if (edges.head.subarray(0, PGDMP_MAGIC.length).equals(PGDMP_MAGIC)) report.checks.push('custom-format header present');
    else report.problems.push('not a pg_dump custom-format archive (no PGDMP header)');
  } else if (target.format === 'sqlite') {
    if (edges.head.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) report.checks.push('SQLite header present');
    else report.problems.push('not a SQLite database (no SQLite header)');
  }
}

interface FormatSink {
  writable: Writable;
  finish(report: VerifyReport): Promise<void>;
  discard(): Promise<void>;
}

/** Where the decoded bytes go: pg_restore --list (custom), a temp file for PRAGMA integrity_check (sqlite), or nowhere. */
async function createFormatSink(target: DecodeTarget): Promise<FormatSink> {
  if (target.format === 'custom') return pgRestoreListSink(target);
  if (target.format === 'sqlite') return sqliteIntegritySink();
  const discard = new Writable({ highWaterMark: 1024 * 1024, write: (_chunk, _encoding, callback) => callback() });
  return { writable: discard, finish: async () => undefined, discard: async () => undefined };
}

function pgRestoreListSink(target: DecodeTarget): FormatSink {
  const child = execa('pg_restore', ['--list'], {
    env: target.env,
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'ignore',
    stderr: 'pipe',
    reject: false,
    ...(target.signal ? { cancelSignal: target.signal } : {}),
  });
  const stdin = child.stdin;
  let stdinOpen = true;
  stdin?.on('error', () => {
    // pg_restore --list stops reading once it has the table of contents; the rest is still hashed.
    stdinOpen = false;
  });
  const writable = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      if (!stdinOpen || !stdin || stdin.destroyed) return callback();
      if (stdin.write(chunk)) return callback();
      const resume = () => {
        stdin.off('drain', resume);
        stdin.off('close', resume);
        callback();
      };
      stdin.once('drain', resume);
      stdin.once('close', resume);
    },
    final(callback) {
      if (stdinOpen && stdin && !stdin.destroyed) stdin.end();
      callback();
    },
  });
  return {
    writable,
    async finish(report) {
      const result = await child;
      if (result.exitCode === 0) report.checks.push('pg_restore --list reads the archive');
      else report.problems.push(`pg_restore --list failed: ${String(result.stderr).trim() || `exit code ${result.exitCode}`}`);
    },
    async discard() {
      child.kill();
      await child.catch(() => undefined);
    },
  };
}

function sqliteIntegritySink(): FormatSink {
  let dir: string | undefined;
  let file: string | undefined;
  const ready = mkdtemp(path.join(tmpdir(), 'faber-verify-')).then((created) => {
    dir = created;
    file = path.join(created, 'check.sqlite');
    return createWriteStream(file, { mode: 0o600 });
  });
  const cleanup = async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  let output: Writable | undefined;
  const writable = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      ready.then((stream) => {
        output = stream;
        if (stream.write(chunk)) callback();
        else stream.once('drain', () => callback());
      }, callback);
    },
    final(callback) {
      ready.then((stream) => stream.end(() => callback()), callback);
    },
  });
  return {
    writable,
    async finish(report) {
      try {
        if (!file) throw new Error('nothing was decoded');
        const { DatabaseSync } = await import('node:sqlite');
        const db = new DatabaseSync(file, { readOnly: true });
        try {
          const rows = db.prepare('PRAGMA integrity_check').all() as Array<Record<string, unknown>>;
          const verdict = rows.map((row) => String(Object.values(row)[0])).join('; ');
          if (verdict === 'ok') report.checks.push('PRAGMA integrity_check: ok');
          else report.problems.push(`PRAGMA integrity_check: ${verdict}`);
        } finally {
          db.close();
        }
      } catch (error) {
        report.problems.push(`the SQLite file cannot be opened: ${(error as Error).message}`);
      } finally {
        await cleanup();
      }
    },
    async discard() {
      output?.destroy();
      await cleanup();
    },
  };
}

async function verifyDirectory(target: VerifyTarget, report: VerifyReport): Promise<void> {
  const expectedFiles = target.expected.files ?? {};
  const actual = await hashDirectory(target.path).catch(() => undefined);
  if (!actual) {
    report.problems.push('the backup directory cannot be read');
    return;
  }
  report.file_readable = true;
  for (const name of Object.keys(actual.checksums)) if (!(name in expectedFiles)) report.problems.push(`unexpected file in the backup directory: ${name}`);
  for (const [name, expectedHash] of Object.entries(expectedFiles)) {
    if (!(name in actual.checksums)) report.problems.push(`missing from the backup directory: ${name}`);
    else if (actual.checksums[name] !== expectedHash) report.problems.push(`checksum mismatch: ${name}`);
  }
  report.size_bytes = Object.values(actual.sizes).reduce((sum, bytes) => sum + bytes, 0);
  if (report.size_bytes !== target.expected.sizeBytes) report.problems.push(`size is ${report.size_bytes} bytes, the catalog recorded ${target.expected.sizeBytes}`);
  if (report.problems.length === 0) report.checks.push(`${Object.keys(expectedFiles).length} files match their checksums`);
  const list = await execa('pg_restore', ['--list', target.path], { env: target.env, extendEnv: false, reject: false, stdout: 'ignore' });
  if (list.exitCode === 0) report.checks.push('pg_restore --list reads the archive');
  else report.problems.push(`pg_restore --list failed: ${String(list.stderr).trim()}`);
}

/** Decoded bytes of a single-file backup, for restores (decrypted first when `identities` are given). */
export function openDecodedStream(filePath: string, compression: Compression, onProgress?: (decodedBytes: number) => void, identities?: string[]): Readable {
  const source = createReadStream(filePath, { highWaterMark: 1024 * 1024 });
  const decoder = createDecompressor(compression);
  // HashingTap counts the streamed bytes, which paces the collection of spent buffers (taps.ts).
  const counted = new HashingTap(onProgress);
  const stages: Array<Readable | Duplex> = [source, ...(identities ? [createDecryptStage(identities)] : []), decoder, counted];
  let stream: Readable = source;
  for (const next of stages.slice(1)) {
    stream.on('error', (error) => next.destroy(error));
    stream = stream.pipe(next as Duplex);
  }
  return stream;
}

/** One checksum for a directory backup: SHA-256 over its sorted "hash  name" lines (sha256sum's format). */
export function directoryDigest(files: Record<string, string>): string {
  const lines = Object.keys(files)
    .sort()
    .map((name) => `${files[name]}  ${name}\n`)
    .join('');
  return createHash('sha256').update(lines).digest('hex');
}
