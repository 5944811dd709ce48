import type { StoredFormat } from '../catalog/formats.ts';
import { recipientFingerprint } from '../config/age-recipients.ts';
import type { EncryptionConfig } from '../config/schema.ts';
import { FaberError } from '../output/errors.ts';
import type { RecordedEncryption } from '../pipeline/encryption.ts';

/** age encrypts one stream; a directory backup is many files that pg_restore reads in place. */
export function refuseUnencryptable(format: StoredFormat, environment: string): void {
  if (format !== 'directory') return;
  throw new FaberError(
    'INVALID_OPTION',
    `Encrypted backups need a single-file format; the directory format cannot be encrypted (environment ${environment})`,
    {
      result: { format, encryption: 'age' },
      suggestions: [
        'Use --format=custom (pg_dump -Fc, restored with pg_restore) or --format=sql',
        `Or turn encryption off for this environment: environments.${environment}.encryption: false`,
      ],
    },
  );
}

export function recordEncryption(encryption: EncryptionConfig): RecordedEncryption {
  return {
    type: 'age',
    recipients: encryption.recipients.map(recipientFingerprint),
    identity_env: encryption.identity_env,
  };
}
