import mysql from 'mysql2/promise';
import type { ConnectionInfo } from '../config/connection.ts';
import type { ErrorCode } from '../output/errors.ts';
import { driverFailure } from './failures.ts';
import type { SqlReader } from './migrations.ts';
import { writeSecretFile, type SecretFile } from './secret-file.ts';

/** Connection details shared by mysql2 and the client tools (through a 0600 option file). */

const CONNECT_TIMEOUT_MS = 10_000;
/** DDL of ours (DROP DATABASE) waits at most this long for another session's metadata lock. */
const LOCK_WAIT_SECONDS = 30;
/** Variables through which the tools would take connection settings from the parent environment. */
const INHERITED_CONNECTION_VARIABLES = ['MYSQL_PWD', 'MYSQL_HOST', 'MYSQL_TCP_PORT', 'MYSQL_UNIX_PORT'];

export function secretsOf(connection: ConnectionInfo): string[] {
  return connection.password ? [connection.password] : [];
}

function connectionOptions(connection: ConnectionInfo, database: string | undefined): mysql.ConnectionOptions {
  const options: mysql.ConnectionOptions = {
    connectTimeout: CONNECT_TIMEOUT_MS,
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    multipleStatements: false,
  };
  if (database) options.database = database;
  if (connection.socket) options.socketPath = connection.socket;
  else if (connection.host) options.host = connection.host;
  if (connection.port) options.port = connection.port;
  if (connection.user) options.user = connection.user;
  if (connection.password !== undefined) options.password = connection.password;
  return options;
}

export interface MysqlSession {
  reader: SqlReader;
  end(): Promise<void>;
}

/** Opens a connection (to `database`, or to none); failures get CONNECTION_FAILED/AUTHENTICATION_FAILED. */
export async function connectMysql(
  connection: ConnectionInfo,
  database: string | undefined,
  display: string,
  fallback: ErrorCode,
): Promise<MysqlSession> {
  const secrets = secretsOf(connection);
  let conn: mysql.Connection;
  try {
    conn = await mysql.createConnection(connectionOptions(connection, database));
  } catch (error) {
    throw driverFailure(error, { action: 'Connecting to', target: display, secrets, fallback: 'CONNECTION_FAILED' });
  }
  // A connection the server drops while idle emits 'error'; without a listener that kills the process.
  conn.on('error', () => {});
  const reader: SqlReader = {
    dialect: 'mysql',
    query: async (sql, params = []) => {
      try {
        const [rows] = await conn.query(sql, params as unknown[]);
        return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
      } catch (error) {
        throw driverFailure(error, { action: 'Querying', target: display, secrets, fallback });
      }
    },
  };
  await reader.query(`SET SESSION lock_wait_timeout = ${LOCK_WAIT_SECONDS}`);
  return { reader, end: () => conn.end().catch(() => {}) };
}

/** A value in a MySQL option file: double-quoted, with the escapes the option-file parser knows. */
function optionValue(value: string): string {
  const escaped = value
    .replaceAll('\\', '\\\\')
    .replaceAll('"', '\\"')
    .replaceAll('\n', '\\n')
    .replaceAll('\r', '\\r')
    .replaceAll('\t', '\\t');
  return `"${escaped}"`;
}

/**
 * The [client] group for one tool run. Only options that both the MariaDB and the MySQL clients
 * know may appear: an unknown option there is fatal. `protocol` makes `localhost` mean TCP, as it
 * does for mysql2, instead of the clients' default socket.
 */
function optionFileText(connection: ConnectionInfo): string {
  const lines = ['[client]'];
  if (connection.user) lines.push(`user=${optionValue(connection.user)}`);
  if (connection.password !== undefined) lines.push(`password=${optionValue(connection.password)}`);
  if (connection.socket) {
    lines.push(`socket=${optionValue(connection.socket)}`, 'protocol=SOCKET');
  } else {
    if (connection.host) lines.push(`host=${optionValue(connection.host)}`);
    if (connection.port) lines.push(`port=${connection.port}`);
    lines.push('protocol=TCP');
  }
  return lines.join('\n') + '\n';
}

export interface ToolCredentials {
  env: NodeJS.ProcessEnv;
  /** `--defaults-extra-file=...`: must be the first argument of every tool. */
  firstArgument: string;
  file: SecretFile;
}

export async function mysqlToolCredentials(
  base: NodeJS.ProcessEnv,
  connection: ConnectionInfo,
  tempDirectory: string,
): Promise<ToolCredentials> {
  const env = { ...base };
  for (const variable of INHERITED_CONNECTION_VARIABLES) delete env[variable];
  const file = await writeSecretFile(tempDirectory, 'my', optionFileText(connection));
  return { env, firstArgument: `--defaults-extra-file=${file.path}`, file };
}

/**
 * `mariadb-dump  Ver 10.19 Distrib 10.11.6-MariaDB, ...` → `10.11.6-MariaDB`;
 * `mariadb-dump from 11.4.2-MariaDB, client 10.19 ...` → `11.4.2-MariaDB`; `mysqldump  Ver 8.0.36 for Linux` → `8.0.36`.
 */
export function mysqlToolVersion(versionLine: string): string {
  return (
    /(?:Distrib|from)\s+([^\s,]+)/.exec(versionLine)?.[1] ?? /Ver\s+([^\s,]+)/.exec(versionLine)?.[1] ?? versionLine
  );
}

export function isMariaDb(version: string): boolean {
  return /mariadb/i.test(version);
}

/** Base tables (MariaDB's system-versioned ones included) with exact row counts. */
export async function mysqlRowCounts(reader: SqlReader, database: string): Promise<Record<string, number>> {
  const tables = await reader.query(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = ? AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY table_name`,
    [database],
  );
  const names = tables.map((row) => String(row.name));
  const counts: Record<string, number> = {};
  for (let start = 0; start < names.length; start += 100) {
    const batch = names.slice(start, start + 100);
    const sql = batch
      .map((name, index) => `SELECT ${index} AS i, COUNT(*) AS n FROM \`${name.replaceAll('`', '``')}\``)
      .join(' UNION ALL ');
    for (const row of await reader.query(sql)) counts[batch[Number(row.i)]!] = Number(row.n);
  }
  return counts;
}
