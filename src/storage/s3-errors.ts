import { FaberError } from '../output/errors.ts';
import { notFound } from './storage.ts';

interface Located {
  description: string;
  bucket: string;
  locationOf(key: string): string;
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const AUTH_NAMES = new Set([
  'CredentialsProviderError',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const CREDENTIAL_SUGGESTIONS = [
  'Provide credentials through the AWS default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN), AWS_PROFILE, web identity (GitHub OIDC) or an instance role',
  'Check that the credentials may read, write, list and delete objects in the bucket (s3:GetObject, s3:PutObject, s3:ListBucket, s3:DeleteObject, s3:AbortMultipartUpload, s3:ListBucketMultipartUploads)',
];

export function statusOf(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

/**
 * Turns an SDK failure into a stable error: a missing object into ENOENT (callers decide what
 * absence means); credentials and permissions into STORAGE_AUTH_FAILED; a missing bucket or a
 * wrong region/endpoint into STORAGE_NOT_FOUND; network, throttling and 5xx into
 * STORAGE_UNAVAILABLE. Messages name the bucket and key, never a credential.
 */
export function storageError(error: unknown, storage: Located, action: string, key: string): Error {
  if (error instanceof FaberError) return error;
  const sdk = (error ?? {}) as SdkError;
  const status = statusOf(error);
  const name = sdk.name ?? '';
  const where = key === '' ? storage.description : storage.locationOf(key);
  const detail = sdk.message && sdk.message !== name ? `${name}: ${sdk.message}` : name || String(error);
  const result = {
    storage: storage.description,
    key: key === '' ? null : key,
    http_status: status ?? null,
    service_error: name || null,
  };
  if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket' && key !== ''))
    return notFound(key, storage.description);
  if (AUTH_NAMES.has(name) || status === 403 || status === 401 || /credential/i.test(sdk.message ?? '')) {
    return new FaberError(
      'STORAGE_AUTH_FAILED',
      `Cannot ${action} ${where}: the storage refused the credentials (${detail})`,
      { cause: error, result, suggestions: CREDENTIAL_SUGGESTIONS },
    );
  }
  if (
    name === 'NoSuchBucket' ||
    name === 'NotFound' ||
    status === 404 ||
    status === 301 ||
    name === 'PermanentRedirect' ||
    name === 'AuthorizationHeaderMalformed'
  ) {
    return new FaberError(
      'STORAGE_NOT_FOUND',
      `Cannot ${action} ${where}: no such bucket at this region/endpoint (${detail})`,
      {
        cause: error,
        result,
        suggestions: [
          `Check backup.storage.bucket ("${storage.bucket}") and that the bucket exists`,
          'Check backup.storage.region (or AWS_REGION) and, for S3-compatible services, backup.storage.endpoint and force_path_style',
        ],
      },
    );
  }
  if (
    NETWORK_CODES.has(sdk.code ?? '') ||
    NETWORK_CODES.has(name) ||
    status === undefined ||
    status >= 500 ||
    status === 429 ||
    name === 'SlowDown' ||
    name === 'TimeoutError'
  ) {
    return new FaberError(
      'STORAGE_UNAVAILABLE',
      `Cannot ${action} ${where}: the storage service is unreachable or failing (${detail})`,
      {
        cause: error,
        result,
        suggestions: [
          'Retry: the SDK already retried transient failures a few times',
          'Check the network and backup.storage.endpoint; for a throttled bucket, run fewer backups at once',
        ],
      },
    );
  }
  return new FaberError('STORAGE_UNAVAILABLE', `Cannot ${action} ${where}: ${detail}`, {
    cause: error,
    result,
    suggestions: ['Retry the command; run it with --verbose for the service response'],
  });
}
