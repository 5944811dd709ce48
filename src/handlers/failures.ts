import { FaberError, type ErrorCode } from '../output/errors.ts';
import { redactSecrets } from '../util/redact.ts';

/**
 * Turns what drivers and client tools say into FaberErrors with stable codes. Every text is
 * passed through redactSecrets with the connection's password before it is kept anywhere.
 */

const AUTHENTICATION_PATTERNS = [
  /password authentication failed/i,
  /no password supplied/i,
  /fe_sendauth/i,
  /role "[^"]*" does not exist/i,
  /(peer|ident|scram|md5|ldap|gss|sspi|cert) authentication failed/i,
  /no pg_hba\.conf entry/i,
  /pg_hba\.conf rejects connection/i,
  /access denied for user/i,
  /authentication plugin .* (cannot|could not) be loaded/i,
];

/** Logged in, but not allowed: checked before AUTHENTICATION_PATTERNS, which MySQL's wording would also match. */
const PERMISSION_PATTERNS = [
  /permission denied (for|to) /i,
  /must be (owner|a member|member) of/i,
  /must be superuser/i,
  /access denied for user \S+ to database/i,
  /command denied to user/i,
  /you need \(at least one of\) the .* privilege/i,
  /access denied; you need/i,
];

const CONNECTION_PATTERNS = [
  /connection refused/i,
  /could not connect to (the )?server/i,
  /connection to server .* failed/i,
  /could not translate host name/i,
  /unknown (mysql |mariadb )?server host/i,
  /can't connect to (local )?(mysql |mariadb )?server/i,
  /is the server running/i,
  /timeout expired|timed out|connection timeout/i,
  /no route to host|network is unreachable/i,
  /server closed the connection unexpectedly|lost connection to (mysql |mariadb )?server|connection terminated/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /too many (connections|clients)/i,
  /database "[^"]*" does not exist/i,
  /unknown database/i,
  /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE)\b/,
];

/** pg SQLSTATEs and mysql2 error codes that identify the failure without reading the message. */
const DRIVER_CODES: Record<string, ConnectionProblem> = {
  '28P01': 'AUTHENTICATION_FAILED',
  '28000': 'AUTHENTICATION_FAILED',
  '42501': 'PERMISSION_DENIED',
  ER_DBACCESS_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_TABLEACCESS_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_COLUMNACCESS_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_SPECIFIC_ACCESS_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_PROCACCESS_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_KILL_DENIED_ERROR: 'PERMISSION_DENIED',
  ER_ACCESS_DENIED_ERROR: 'AUTHENTICATION_FAILED',
  ER_ACCESS_DENIED_NO_PASSWORD_ERROR: 'AUTHENTICATION_FAILED',
  ER_NOT_SUPPORTED_AUTH_MODE: 'AUTHENTICATION_FAILED',
  '3D000': 'CONNECTION_FAILED',
  '57P03': 'CONNECTION_FAILED',
  '53300': 'CONNECTION_FAILED',
  ER_BAD_DB_ERROR: 'CONNECTION_FAILED',
  ER_CON_COUNT_ERROR: 'CONNECTION_FAILED',
  PROTOCOL_CONNECTION_LOST: 'CONNECTION_FAILED',
  ECONNREFUSED: 'CONNECTION_FAILED',
  ECONNRESET: 'CONNECTION_FAILED',
  ENOTFOUND: 'CONNECTION_FAILED',
  EAI_AGAIN: 'CONNECTION_FAILED',
  ETIMEDOUT: 'CONNECTION_FAILED',
  EHOSTUNREACH: 'CONNECTION_FAILED',
  ENETUNREACH: 'CONNECTION_FAILED',
  ENOENT: 'CONNECTION_FAILED',
};

const VERSION_PATTERNS = [/server version mismatch/i, /unsupported version \([\d.]+\) in file header/i];

export type ConnectionProblem = 'AUTHENTICATION_FAILED' | 'PERMISSION_DENIED' | 'CONNECTION_FAILED';
type RecognisedProblem = ConnectionProblem | 'TOOL_VERSION_MISMATCH';

/** Recognises authentication, connection and tool-version failures in a driver or tool message. */
export function classifyMessage(text: string): RecognisedProblem | undefined {
  if (VERSION_PATTERNS.some((pattern) => pattern.test(text))) return 'TOOL_VERSION_MISMATCH';
  if (PERMISSION_PATTERNS.some((pattern) => pattern.test(text))) return 'PERMISSION_DENIED';
  if (AUTHENTICATION_PATTERNS.some((pattern) => pattern.test(text))) return 'AUTHENTICATION_FAILED';
  if (CONNECTION_PATTERNS.some((pattern) => pattern.test(text))) return 'CONNECTION_FAILED';
  return undefined;
}

const SUGGESTIONS: Record<RecognisedProblem, string[]> = {
  TOOL_VERSION_MISMATCH: [
    'Install client tools at least as new as the server (apt-get install postgresql-client-<server major> from apt.postgresql.org, or brew install libpq)',
    'Put the newer tools first on PATH',
  ],
  AUTHENTICATION_FAILED: [
    'Check the user name and password in the connection URL (the environment variable named by connection_string_env)',
    'Percent-encode special characters in the password (@ → %40, : → %3A, / → %2F, % → %25)',
  ],
  PERMISSION_DENIED: [
    'The user logged in but lacks a privilege; the message above names it',
    'See "Privileges" in the README for what backup, restore and verify --deep need on each engine',
  ],
  CONNECTION_FAILED: [
    'Check that the database server is running and reachable from this machine',
    'Check the host, port and database name in the connection URL',
  ],
};

interface DriverErrorShape {
  message?: unknown;
  code?: unknown;
  errors?: unknown;
}

/** Message of an Error, including the members of an AggregateError (Node's dual-stack connect). */
export function describeError(error: unknown): { text: string; code: string | undefined } {
  if (!(error instanceof Error)) return { text: String(error), code: undefined };
  const shape = error as DriverErrorShape;
  const parts = [error.message];
  if (Array.isArray(shape.errors)) {
    for (const inner of shape.errors) parts.push(inner instanceof Error ? inner.message : String(inner));
  }
  let code = typeof shape.code === 'string' ? shape.code : undefined;
  if (!code && Array.isArray(shape.errors)) {
    const first = shape.errors.find(
      (inner): inner is DriverErrorShape => typeof (inner as DriverErrorShape)?.code === 'string',
    );
    code = first?.code as string | undefined;
  }
  return { text: parts.filter(Boolean).join('; ') || code || error.name, code };
}

/**
 * A driver error from connecting or querying. Connection and authentication failures get their
 * own codes; anything else gets `fallback`. The raw error is not kept as `cause`: driver errors
 * may carry connection parameters.
 */
export function driverFailure(
  error: unknown,
  context: { action: string; target: string; secrets: readonly string[]; fallback: ErrorCode },
): FaberError {
  const { text, code } = describeError(error);
  const problem = (code ? DRIVER_CODES[code] : undefined) ?? classifyMessage(text);
  const message = redactSecrets(`${context.action} ${context.target} failed: ${text}`, context.secrets);
  const result: Record<string, unknown> = { target: redactSecrets(context.target, context.secrets) };
  if (code) result.driver_code = code;
  if (problem) return new FaberError(problem, message, { result, suggestions: SUGGESTIONS[problem] });
  return new FaberError(context.fallback, message, { result, suggestions: fallbackSuggestions(context.fallback) });
}

/** A client tool that exited non-zero: stderr is classified, redacted and quoted. */
export function toolFailure(
  tool: string,
  outcome: { exitCode: number | undefined; signal: string | undefined; stderr: string },
  context: { secrets: readonly string[]; fallback: ErrorCode },
): FaberError {
  const stderr = redactSecrets(outcome.stderr.trim(), context.secrets);
  const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with code ${outcome.exitCode ?? 'unknown'}`;
  const message = stderr ? `${tool} ${how}: ${stderr}` : `${tool} ${how} and printed nothing on stderr`;
  const problem = classifyMessage(stderr);
  const result: Record<string, unknown> = { tool, exit_code: outcome.exitCode ?? null };
  if (outcome.signal) result.signal = outcome.signal;
  if (problem) return new FaberError(problem, message, { result, suggestions: SUGGESTIONS[problem] });
  return new FaberError(context.fallback, message, { result, suggestions: fallbackSuggestions(context.fallback) });
}

/** What to do about a failure the tool's or driver's message did not let us classify. */
function fallbackSuggestions(code: ErrorCode): string[] {
  const verb = code === 'RESTORE_FAILED' ? 'restore' : 'backup';
  return [
    `The database tool's message above names what went wrong`,
    `Check the database server's log, then run the ${verb} again (--verbose shows more)`,
  ];
}

export function cancelled(what: string): FaberError {
  return new FaberError('CANCELLED', `${what} was cancelled`);
}

export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw cancelled(what);
}
