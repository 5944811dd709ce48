import type { Readable } from 'node:stream';
import type { StoredFormat } from '../catalog/formats.ts';
import { recipientFingerprint } from '../config/age-recipients.ts';
import type { EncryptionConfig } from '../config/schema.ts';
import { FaberError } from '../output/errors.ts';
import type { ArchiveEncryption } from '../pipeline/archive.ts';
import type { RecordedEncryption } from '../pipeline/encryption.ts';
import { checkDecodedContent, type DecodeTarget, type VerifyReport } from '../pipeline/verify.ts';

/** The plaintext side of an encrypted backup: checked while it is written, since the backup holds no key to read it back. */
export interface EncryptedWrite {
  archive: ArchiveEncryption;
  /** The file's own checks (size, SHA-256, age header) plus the plaintext's (content hash, decode, trailer, format). */
  combine(fileReport: VerifyReport, contentSha256: string): VerifyReport;
}

export function encryptedWrite(encryption: EncryptionConfig, target: DecodeTarget): EncryptedWrite {
  const plaintext: VerifyReport = { passed: false, file_exists: true, file_readable: true, size_bytes: 0, checks: [], problems: [] };
  let decodedSha256: string | undefined;
  const inspectPlaintext = (compressed: Readable) =>
    checkDecodedContent([compressed], target, plaintext, (digest) => {
      decodedSha256 = digest;
    });
  return {
    archive: { recipients: encryption.recipients, inspectPlaintext },
    combine(fileReport, contentSha256) {
      const problems = [...fileReport.problems, ...plaintext.problems];
      const checks = [...fileReport.checks];
      if (decodedSha256 !== undefined) {
        if (decodedSha256 === contentSha256) checks.push('decoded content checksum matches (checked before encryption)');
        else problems.push(`decoded content checksum mismatch before encryption: expected ${contentSha256}, got ${decodedSha256}`);
      }
      checks.push(...plaintext.checks);
      return { ...fileReport, checks, problems, passed: problems.length === 0, notes: [] };
    },
  };
}

/** age encrypts one stream; a directory backup is many files that pg_restore reads in place. */
export function refuseUnencryptable(format: StoredFormat, environment: string): void {
  if (format !== 'directory') return;
  throw new FaberError('INVALID_OPTION', `Encrypted backups need a single-file format; the directory format cannot be encrypted (environment ${environment})`, {
    result: { format, encryption: 'age' },
    suggestions: ['Use --format=custom (pg_dump -Fc, restored with pg_restore) or --format=sql', `Or turn encryption off for this environment: environments.${environment}.encryption: false`],
  });
}

export function recordEncryption(encryption: EncryptionConfig): RecordedEncryption {
  return { type: 'age', recipients: encryption.recipients.map(recipientFingerprint), identity_env: encryption.identity_env };
}
