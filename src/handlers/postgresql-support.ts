import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ConnectionInfo } from '../config/connection.ts';
import type { ErrorCode } from '../output/errors.ts';
import { driverFailure } from './failures.ts';
import type { SqlReader } from './migrations.ts';
import { writeSecretFile, type SecretFile } from './secret-file.ts';

/** Connection details shared by the `pg` driver and the libpq tools (through their environment). */

const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

/** libpq URL parameters the tools understand, and the environment variables that carry them. */
const LIBPQ_PARAMETER_ENV: Record<string, string> = {
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  gssencmode: 'PGGSSENCMODE',
  channel_binding: 'PGCHANNELBINDING',
};

function readOptionalFile(filePath: string | undefined): string | undefined {
  return filePath ? readFileSync(filePath, 'utf8') : undefined;
}

/**
 * libpq's sslmode for the driver. `prefer`/`allow` mean plain connections here: the driver cannot
 * fall back from TLS the way libpq does.
 */
function sslConfig(params: Record<string, string>): pg.ClientConfig['ssl'] {
  const mode = params.sslmode;
  if (mode !== 'require' && mode !== 'verify-ca' && mode !== 'verify-full') return false;
  const files = {
    ca: readOptionalFile(params.sslrootcert),
    cert: readOptionalFile(params.sslcert),
    key: readOptionalFile(params.sslkey),
  };
  const defined = Object.fromEntries(Object.entries(files).filter(([, value]) => value !== undefined));
  if (mode === 'require') return { ...defined, rejectUnauthorized: false };
  if (mode === 'verify-ca') return { ...defined, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  return { ...defined, rejectUnauthorized: true };
}

function clientConfig(connection: ConnectionInfo, database: string): pg.ClientConfig {
  const timeout = Number(connection.params.connect_timeout) || DEFAULT_CONNECT_TIMEOUT_SECONDS;
  const config: pg.ClientConfig = {
    database,
    ssl: sslConfig(connection.params),
    application_name: 'faber-db',
    connectionTimeoutMillis: timeout * 1000,
  };
  const host = connection.socket ?? connection.host;
  if (host) config.host = host;
  if (connection.port) config.port = connection.port;
  if (connection.user) config.user = connection.user;
  if (connection.password !== undefined) config.password = connection.password;
  return config;
}

export function secretsOf(connection: ConnectionInfo): string[] {
  return connection.password ? [connection.password] : [];
}

/** Opens a client on `database`; connection and authentication failures get their codes. */
export async function connectPostgres(
  connection: ConnectionInfo,
  database: string,
  display: string,
): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(connection, database));
  // An idle client whose server goes away emits 'error'; without a listener that kills the process.
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => {});
    throw driverFailure(error, {
      action: 'Connecting to',
      target: display,
      secrets: secretsOf(connection),
      fallback: 'CONNECTION_FAILED',
    });
  }
}

/** Runs a query, turning driver errors into FaberErrors with redacted messages. */
export async function queryPostgres<Row extends Record<string, unknown>>(
  client: pg.Client,
  sql: string,
  params: readonly unknown[],
  context: { connection: ConnectionInfo; display: string; fallback: ErrorCode },
): Promise<Row[]> {
  try {
    const result = await client.query<Row>(sql, params as unknown[]);
    return result.rows;
  } catch (error) {
    throw driverFailure(error, {
      action: 'Querying',
      target: context.display,
      secrets: secretsOf(context.connection),
      fallback: context.fallback,
    });
  }
}

export function postgresReader(
  client: pg.Client,
  connection: ConnectionInfo,
  display: string,
  fallback: ErrorCode = 'BACKUP_FAILED',
): SqlReader {
  const reader: SqlReader = {
    dialect: 'postgresql',
    query: (sql, params = []) => queryPostgres(client, sql, params, { connection, display, fallback }),
  };
  // Prisma keeps the schema in the URL (`?schema=app`); its migrations table lives there.
  if (connection.params.schema) reader.defaultSchema = connection.params.schema;
  return reader;
}

/** A libpq password file matching any host, port, database and user: it is made for one run. */
function passfileLine(password: string): string {
  return `*:*:*:*:${password.replaceAll('\\', '\\\\').replaceAll(':', '\\:')}\n`;
}

/**
 * Environment for pg_dump/pg_restore/psql: connection settings as PG* variables and the password
 * in a 0600 passfile (libpq's recommendation over PGPASSWORD), so nothing shows in `ps`.
 */
export async function postgresToolEnv(
  base: NodeJS.ProcessEnv,
  connection: ConnectionInfo,
  database: string,
  tempDirectory: string,
): Promise<{ env: NodeJS.ProcessEnv; passfile: SecretFile | undefined }> {
  const env: NodeJS.ProcessEnv = { ...base, PGDATABASE: database, PGAPPNAME: 'faber-db' };
  const host = connection.socket ?? connection.host;
  if (host) env.PGHOST = host;
  if (connection.port) env.PGPORT = String(connection.port);
  if (connection.user) env.PGUSER = connection.user;
  for (const [parameter, variable] of Object.entries(LIBPQ_PARAMETER_ENV)) {
    const value = connection.params[parameter];
    if (value !== undefined) env[variable] = value;
  }
  env.PGCONNECT_TIMEOUT ??= String(DEFAULT_CONNECT_TIMEOUT_SECONDS);
  if (connection.password === undefined) return { env, passfile: undefined };

  // PGPASSWORD would win over the passfile; the URL's password is the one to use.
  delete env.PGPASSWORD;
  if (/[\r\n]/.test(connection.password)) {
    // A passfile cannot hold a line break; the environment is private to the child and its user.
    return { env: { ...env, PGPASSWORD: connection.password }, passfile: undefined };
  }
  const passfile = await writeSecretFile(tempDirectory, 'pgpass', passfileLine(connection.password));
  env.PGPASSFILE = passfile.path;
  return { env, passfile };
}

/** `15.4`, `9.6.24`, `17devel` → a comparable number like server_version_num (150004). */
export function postgresVersionNumber(version: string): number | undefined {
  const match = /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(version);
  if (!match) return undefined;
  const [major, minor, patch] = [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
  return major >= 10 ? major * 10000 + minor : major * 10000 + minor * 100 + patch;
}

/** 150004 → 15; 90624 → 9.6 (before 10 the major version had two parts). */
export function postgresMajor(versionNumber: number): number {
  return versionNumber >= 100000 ? Math.floor(versionNumber / 10000) : Math.floor(versionNumber / 100) / 100;
}

/** `pg_dump (PostgreSQL) 16.2 (Debian 16.2-1)` → `16.2`. */
export function postgresToolVersion(versionLine: string): string {
  return /\)\s*(\S+)/.exec(versionLine)?.[1] ?? versionLine;
}

export function quotePostgresIdentifier(identifier: string): string {
  return '"' + identifier.replaceAll('"', '""') + '"';
}

export function quotePostgresLiteral(value: string): string {
  return "'" + value.replaceAll("'", "''") + "'";
}

/** User tables (schema-qualified, quoted as PostgreSQL quotes them) with exact row counts. */
export async function postgresRowCounts(reader: SqlReader): Promise<Record<string, number>> {
  const tables = await reader.query(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                       WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
     ORDER BY 1`,
  );
  const names = tables.map((row) => String(row.name));
  const counts: Record<string, number> = {};
  for (let start = 0; start < names.length; start += 100) {
    const batch = names.slice(start, start + 100);
    // Ordinals, not names, identify the rows: no table name ever has to become a literal.
    const sql = batch.map((name, index) => `SELECT ${index} AS i, count(*) AS n FROM ${name}`).join(' UNION ALL ');
    for (const row of await reader.query(sql)) counts[batch[Number(row.i)]!] = Number(row.n);
  }
  return counts;
}
