/** The database servers the benchmark uses, and the client tools it drives directly. */
import { execa } from 'execa';

export interface Services {
  pg: { host: string; port: number; user: string };
  mysql: { host: string; port: number; user: string };
}

export function servicesFromEnv(env: NodeJS.ProcessEnv): Services {
  return {
    pg: {
      host: env.BENCH_PG_HOST ?? '127.0.0.1',
      port: Number(env.BENCH_PG_PORT ?? 5432),
      user: env.BENCH_PG_USER ?? 'postgres',
    },
    mysql: {
      host: env.BENCH_MYSQL_HOST ?? '127.0.0.1',
      port: Number(env.BENCH_MYSQL_PORT ?? 3306),
      user: env.BENCH_MYSQL_USER ?? 'root',
    },
  };
}

/** Connection arguments for pg_dump/psql/pg_restore (trust auth: no password anywhere). */
export function pgArgs(services: Services): string[] {
  return ['-h', services.pg.host, '-p', String(services.pg.port), '-U', services.pg.user];
}

export function mysqlArgs(services: Services): string[] {
  return ['-h', services.mysql.host, '-P', String(services.mysql.port), '-u', services.mysql.user];
}

export function pgUrl(services: Services, database: string): string {
  return `postgresql://${services.pg.user}@${services.pg.host}:${services.pg.port}/${database}`;
}

export function mysqlUrl(services: Services, database: string): string {
  return `mysql://${services.mysql.user}@${services.mysql.host}:${services.mysql.port}/${database}`;
}

/** Runs SQL (one or more statements, each in its own transaction) and returns unaligned output. */
export async function psql(services: Services, database: string, sql: string): Promise<string> {
  const result = await execa(
    'psql',
    [...pgArgs(services), '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-d', database, '-f', '-'],
    { input: sql },
  );
  return result.stdout;
}

export async function mysqlCli(services: Services, sql: string, database?: string): Promise<string> {
  const result = await execa('mariadb', [...mysqlArgs(services), '-N', '-B', ...(database ? [database] : [])], {
    input: sql,
  });
  return result.stdout;
}

export interface ServiceStatus {
  postgresql: string | null;
  mariadb: string | null;
}

/** null when the service answers, otherwise what is wrong and how to start it. */
export async function checkServices(services: Services): Promise<ServiceStatus> {
  const pgDown = await psql(services, 'postgres', 'SELECT 1').then(
    () => null,
    (error: Error) =>
      `PostgreSQL at ${services.pg.host}:${services.pg.port} does not answer (${lastLine(error)}). ` +
      'Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  );
  const mysqlDown = await mysqlCli(services, 'SELECT 1').then(
    () => null,
    (error: Error) =>
      `MariaDB at ${services.mysql.host}:${services.mysql.port} does not answer (${lastLine(error)}). ` +
      'Start it: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd',
  );
  return { postgresql: pgDown, mariadb: mysqlDown };
}

/** The client's own last words (its stderr), else execa's message. */
function lastLine(error: Error): string {
  const stderr = (error as Error & { stderr?: unknown }).stderr;
  const text = typeof stderr === 'string' && stderr.trim() ? stderr : error.message;
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? text;
}
