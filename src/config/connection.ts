import path from 'node:path';
import { FaberError } from '../output/errors.ts';
import { redactUrls } from '../util/redact.ts';
import type { Provider } from './schema.ts';

/** A parsed connection URL. `password` is a secret: never log it, never put it in argv. */
export interface ConnectionInfo {
  provider: Provider;
  /** The URL with the password replaced by `***`: the only form that may be shown. */
  redacted: string;
  host?: string;
  port?: number;
  /** Unix socket directory (PostgreSQL `?host=/run/postgresql`) or socket file (MySQL `?socket=`). */
  socket?: string;
  user?: string;
  password?: string;
  database: string;
  /** SQLite only: absolute path of the database file. */
  filePath?: string;
  /** Query parameters other than host/socket (sslmode, ...), passed on to the tools. */
  params: Record<string, string>;
}

const SCHEMES: Record<string, Provider> = {
  'postgres:': 'postgresql',
  'postgresql:': 'postgresql',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
  'sqlite:': 'sqlite',
  'file:': 'sqlite',
};

function invalid(message: string, redacted: string): FaberError {
  return new FaberError('CONNECTION_URL_INVALID', message, {
    result: { connection_url: redacted },
    suggestions: [
      'Use postgres://user:password@host:5432/dbname, mysql://user:password@host:3306/dbname or sqlite:path/to/file.db',
      'Percent-encode special characters in the password (@ → %40, : → %3A, / → %2F, % → %25)',
    ],
  });
}

/**
 * Parses a connection URL for the configured provider. Relative SQLite paths are resolved
 * against the workspace root.
 */
export function parseConnectionUrl(raw: string, expected: Provider, workspaceRoot: string): ConnectionInfo {
  const trimmed = raw.trim();
  const redacted = redactUrls(trimmed);
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(trimmed)?.[0]?.toLowerCase();
  const provider = scheme ? SCHEMES[scheme] : undefined;
  if (!provider) {
    throw invalid(`Unsupported connection URL scheme "${scheme ?? trimmed.slice(0, 12)}" (${redacted})`, redacted);
  }
  if (provider !== expected) {
    throw invalid(`The connection URL is for ${provider} but the config says the provider is ${expected}`, redacted);
  }
  if (provider === 'sqlite') return parseSqlite(trimmed, workspaceRoot, redacted);

  // libpq allows `postgres://user@/db?host=/socket` (no host); WHATWG URL does not, so give it a stand-in.
  const hostless = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@\//i.test(trimmed);
  let url: URL;
  try {
    url = new URL(hostless ? trimmed.replace(/@\//, '@faber-no-host/') : trimmed);
  } catch {
    throw invalid(`The connection URL is not a valid URL (${redacted})`, redacted);
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw invalid(`The connection URL names no database (${redacted}); add /dbname after the host`, redacted);
  }
  const params: Record<string, string> = {};
  for (const [key, value] of url.searchParams) params[key] = value;
  const socket = params.host?.startsWith('/') ? params.host : params.socket;
  delete params.host;
  delete params.socket;
  const info: ConnectionInfo = { provider, redacted, database, params };
  if (url.hostname && !hostless) info.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.port) info.port = Number(url.port);
  if (socket) info.socket = socket;
  if (url.username) info.user = decodeURIComponent(url.username);
  if (url.password) info.password = decodeURIComponent(url.password);
  if (!info.host && !info.socket) throw invalid(`The connection URL names no host (${redacted})`, redacted);
  return info;
}

function parseSqlite(raw: string, workspaceRoot: string, redacted: string): ConnectionInfo {
  // sqlite:path, sqlite://path, sqlite:///abs/path, file:path, file:///abs/path
  let rest = raw.replace(/^(sqlite|file):/i, '');
  const query = rest.indexOf('?');
  if (query >= 0) rest = rest.slice(0, query);
  if (rest.startsWith('///')) rest = rest.slice(2);
  else if (rest.startsWith('//')) rest = rest.slice(2);
  rest = decodeURIComponent(rest);
  if (!rest || rest === ':memory:') {
    throw invalid(`A SQLite URL must name a database file (${redacted})`, redacted);
  }
  const filePath = path.resolve(workspaceRoot, rest);
  return {
    provider: 'sqlite',
    redacted,
    database: path.basename(filePath).replace(/\.(sqlite3?|db)$/i, ''),
    filePath,
    params: {},
  };
}
