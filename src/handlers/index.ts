import type { ConnectionInfo } from '../config/connection.ts';
import type { DatabaseHandler } from './handler.ts';

export interface HandlerOptions {
  /** Environment for child processes (PATH decides which client tools are found). */
  env: NodeJS.ProcessEnv;
  /** Where handlers may put short-lived private files (0600 option files, SQLite temp copies). */
  tempDirectory: string;
}

export type { DatabaseHandler } from './handler.ts';

/** Picks the handler for the connection's provider. */
export async function createHandler(connection: ConnectionInfo, options: HandlerOptions): Promise<DatabaseHandler> {
  switch (connection.provider) {
    case 'postgresql':
      return new (await import('./postgresql.ts')).PostgresHandler(connection, options);
    case 'mysql':
      return new (await import('./mysql.ts')).MysqlHandler(connection, options);
    case 'sqlite':
      return new (await import('./sqlite.ts')).SqliteHandler(connection, options);
  }
}
