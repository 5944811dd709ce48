/**
 * Every failure the plugin reports carries one of these stable codes: scripts and CI match on them, so a
 * code never changes meaning once released.
 * Callers switch on `code`; people read `message` and `suggestions`.
 */
export const ERROR_CODES = [
  'CONFIG_NOT_FOUND',
  'CONFIG_INVALID',
  'ENVIRONMENT_UNKNOWN',
  'CONNECTION_ENV_UNSET',
  'CONNECTION_URL_INVALID',
  'CONNECTION_FAILED',
  'AUTHENTICATION_FAILED',
  'PERMISSION_DENIED',
  'TOOL_NOT_FOUND',
  'TOOL_VERSION_MISMATCH',
  'INSUFFICIENT_DISK_SPACE',
  'DIRECTORY_NOT_WRITABLE',
  'BACKUP_FAILED',
  'VERIFICATION_FAILED',
  'BACKUP_NOT_FOUND',
  'BACKUP_PROTECTED',
  'RESTORE_FAILED',
  'CONFIRMATION_REQUIRED',
  'CANCELLED',
  'LOCK_TIMEOUT',
  'CATALOG_INVALID',
  'INVALID_OPTION',
  'UNSUPPORTED',
  'IO_ERROR',
  'STORAGE_AUTH_FAILED',
  'STORAGE_NOT_FOUND',
  'STORAGE_UNAVAILABLE',
  'ENCRYPTION_KEY_MISSING',
  'ENCRYPTION_KEY_WRONG',
  'INTERNAL_ERROR',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FaberErrorDetails {
  /** Facts about the failure, shown to people and returned as `result` (never secrets). */
  result?: Record<string, unknown>;
  /** What the user can do next, phrased as commands of this plugin. */
  suggestions?: string[];
  cause?: unknown;
}

export class FaberError extends Error {
  readonly code: ErrorCode;
  readonly result: Record<string, unknown>;
  readonly suggestions: string[];

  constructor(code: ErrorCode, message: string, details: FaberErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'FaberError';
    this.code = code;
    this.result = details.result ?? {};
    this.suggestions = details.suggestions ?? [];
  }
}

export function isFaberError(error: unknown): error is FaberError {
  return error instanceof FaberError;
}

/** Turns anything thrown into a FaberError, keeping the original as `cause` for --verbose. */
export function toFaberError(error: unknown, fallback: ErrorCode = 'INTERNAL_ERROR'): FaberError {
  if (isFaberError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new FaberError('INSUFFICIENT_DISK_SPACE', `The disk filled up: ${message}`, {
      cause: error,
      suggestions: ['Free up disk space (df -h), or clean up old backups with the cleanup-backups target'],
    });
  }
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS') {
    return new FaberError('DIRECTORY_NOT_WRITABLE', message, { cause: error });
  }
  if (errno === 'EIO') return new FaberError('IO_ERROR', message, { cause: error });
  return new FaberError(fallback, message, { cause: error });
}
