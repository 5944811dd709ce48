import { execFileSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { chooseS3Servers } from './s3-servers.ts';

/**
 * Finds the database servers once per test run and hands their admin URLs to the workers
 * (`inject('faberPostgres')`), so no worker probes on its own. In order:
 *   1. FABER_TEST_POSTGRES_URL / FABER_TEST_MYSQL_URL (an admin URL; its database is used to create others),
 *   2. the local services (postgres://postgres@127.0.0.1:5432/postgres, mysql://root@127.0.0.1:3306/mysql),
 *   3. Testcontainers, when a Docker engine answers (image majors match the local client tools).
 * When none works the location carries the reason, and tests that need the server fail with it
 * (they are never skipped). Tests that need no server are not held up.
 * It also probes Docker once for the S3 suites' MinIO runs (s3-servers.ts).
 */

export type ServerLocation = { url: string; via: string } | { error: string };

declare module 'vitest' {
  export interface ProvidedContext {
    faberPostgres: ServerLocation;
    faberMysql: ServerLocation;
  }
}

type Kind = 'postgresql' | 'mysql';

interface Stoppable {
  stop(): Promise<unknown>;
}

const LOCAL_URLS: Record<Kind, string> = {
  postgresql: 'postgres://postgres@127.0.0.1:5432/postgres',
  mysql: 'mysql://root@127.0.0.1:3306/mysql',
};
const ENV_VARIABLES: Record<Kind, string> = { postgresql: 'FABER_TEST_POSTGRES_URL', mysql: 'FABER_TEST_MYSQL_URL' };
const PROBE_TIMEOUT_MS = 3000;

async function probe(kind: Kind, url: string): Promise<void> {
  if (kind === 'postgresql') {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => {});
    }
    return;
  }
  const connection = await mysql.createConnection({ uri: url, connectTimeout: PROBE_TIMEOUT_MS });
  try {
    await connection.query('SELECT 1');
  } finally {
    await connection.end().catch(() => {});
  }
}

function reason(error: unknown): string {
  if (error instanceof AggregateError) return error.errors.map(reason).join('; ') || 'connection failed';
  return error instanceof Error ? error.message || error.name : String(error);
}

function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@]*@/, '$1:***@');
}

/** `pg_dump (PostgreSQL) 15.20` → `15`; `... Distrib 10.11.19-MariaDB` → `10.11`. */
function localClientImage(kind: Kind): string {
  try {
    if (kind === 'postgresql') {
      const major = /\)\s*(\d+)/.exec(execFileSync('pg_dump', ['--version'], { encoding: 'utf8' }))?.[1];
      return `postgres:${major ?? '17'}`;
    }
    const version = execFileSync('mariadb', ['--version'], { encoding: 'utf8' });
    const majorMinor = /(?:Distrib|from)\s+(\d+\.\d+)/.exec(version)?.[1];
    return `mariadb:${majorMinor ?? '11.4'}`;
  } catch {
    return kind === 'postgresql' ? 'postgres:17' : 'mariadb:11.4';
  }
}

async function startContainer(kind: Kind, containers: Stoppable[]): Promise<string> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  await getContainerRuntimeClient();
  const image = localClientImage(kind);
  if (kind === 'postgresql') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer(image)
      .withUsername('postgres')
      .withPassword('faber-test')
      .withDatabase('postgres')
      .start();
    containers.push(container);
    return `postgres://postgres:faber-test@${container.getHost()}:${container.getPort()}/postgres`;
  }
  const { MariaDbContainer } = await import('@testcontainers/mariadb');
  const container = await new MariaDbContainer(image).withRootPassword('faber-test').start();
  containers.push(container);
  return `mysql://root:faber-test@${container.getHost()}:${container.getPort()}/mysql`;
}

async function locate(kind: Kind, containers: Stoppable[]): Promise<ServerLocation> {
  const variable = ENV_VARIABLES[kind];
  const explicit = process.env[variable];
  if (explicit) {
    try {
      await probe(kind, explicit);
      return { url: explicit, via: variable };
    } catch (error) {
      return { error: `${variable} is set but ${redact(explicit)} does not answer: ${reason(error)}` };
    }
  }
  try {
    await probe(kind, LOCAL_URLS[kind]);
    return { url: LOCAL_URLS[kind], via: 'local service' };
  } catch (localError) {
    try {
      return { url: await startContainer(kind, containers), via: 'testcontainers' };
    } catch (dockerError) {
      return {
        error:
          `No ${kind === 'postgresql' ? 'PostgreSQL' : 'MySQL/MariaDB'} server for the tests. Provide one of: ` +
          `(1) ${variable}=<admin URL>; (2) a local service at ${LOCAL_URLS[kind]} (${reason(localError)}); ` +
          `(3) a Docker engine for Testcontainers (${reason(dockerError)}).`,
      };
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const containers: Stoppable[] = [];
  const [postgres, mysqlServer, s3Servers] = await Promise.all([
    locate('postgresql', containers),
    locate('mysql', containers),
    chooseS3Servers(),
  ]);
  project.provide('faberPostgres', postgres);
  project.provide('faberMysql', mysqlServer);
  project.provide('faberS3Servers', s3Servers);
  return async () => {
    await Promise.all(containers.map((container) => container.stop()));
  };
}
