import { z } from 'zod';
import { COMPRESSIONS, FORMATS, type BackupFormat, type Compression } from '../config/schema.ts';
import { FaberError } from '../output/errors.ts';

/** Options of a backup, as the executor and the programmatic API take them. */
export interface BackupOptions {
  environment?: string | undefined;
  label?: string | undefined;
  reason?: string | undefined;
  compression?: boolean | Compression | undefined;
  format?: BackupFormat | undefined;
  retentionDays?: number | undefined;
  tags?: string[] | undefined;
  /** Skip the confirmation for large backups of environments with require_approval. */
  yes?: boolean | undefined;
  /** Succeed without a backup when the environment's backup_before_migrate is false. */
  skipIfNotRequired?: boolean | undefined;
  /** Succeed without a backup when no migration is pending (the pre-migrate-backup target). */
  skipIfNothingPending?: boolean | undefined;
  /** Cleanup never deletes a pinned backup. */
  pin?: boolean | undefined;
}

const backupOptionsSchema = z.object({
  environment: z.string().min(1).optional(),
  // An empty --label is a mistake (an unset variable in `--label=$LABEL`), not a wish for no label.
  label: z.string().min(1, 'an empty label; give one with letters or digits, or leave --label out').max(200).optional(),
  reason: z.string().max(500).optional(),
  compression: z.union([z.boolean(), z.enum(COMPRESSIONS)]).optional(),
  format: z.enum(FORMATS).optional(),
  retentionDays: z.number().int('a whole number of days').positive('at least 1 day').max(36500).optional(),
  tags: z.array(z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'tags of letters, digits and . _ : -')).max(50).optional(),
  yes: z.boolean().optional(),
  skipIfNotRequired: z.boolean().optional(),
  skipIfNothingPending: z.boolean().optional(),
  pin: z.boolean().optional(),
});

/** Options arrive from the command line as well as from code: check them like config. */
export function parseBackupOptions(options: BackupOptions): BackupOptions {
  const parsed = backupOptionsSchema.safeParse(options);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `--${issue.path.join('.')}: ${issue.message}`);
  throw new FaberError('INVALID_OPTION', `Invalid option${problems.length > 1 ? 's' : ''}: ${problems.join('; ')}`, {
    result: { problems },
    suggestions: ['See the README for the backup executor options, or run with --help'],
  });
}
