import path from 'node:path';
import type { ConnectionInfo } from '../config/connection.ts';
import { engineOf } from '../handlers/engines.ts';
import type { BackupEntry, BackupSource } from './schema.ts';

/** Which database a connection points at, as recorded in a catalog entry's `source`. */
export function sourceOf(
  connection: ConnectionInfo,
  workspaceRoot: string,
  environmentDatabase: boolean,
): BackupSource {
  const engine = engineOf(connection.provider);
  if (engine.databaseIsFile) {
    const filePath = connection.filePath ?? connection.database;
    const relative = path.relative(workspaceRoot, filePath);
    const inside = !relative.startsWith('..') && !path.isAbsolute(relative);
    return {
      engine: connection.provider,
      host: null,
      port: null,
      database: inside ? relative.split(path.sep).join('/') : filePath,
      environment_database: environmentDatabase,
    };
  }
  const host = connection.socket ?? connection.host ?? null;
  const port = connection.socket ? null : (connection.port ?? engine.defaultPort);
  return {
    engine: connection.provider,
    host,
    port,
    database: connection.database,
    environment_database: environmentDatabase,
  };
}

/** The same database: engine, host, port and name (the environment flag aside). */
export function sameDatabase(a: BackupSource, b: BackupSource): boolean {
  return a.engine === b.engine && a.host === b.host && a.port === b.port && a.database === b.database;
}

/**
 * Whether an entry is a backup of the environment's own database, the only kind a restore picks
 * by default and cleanup counts as "newest verified" or towards min_keep. With `current` (the
 * environment's connection now) a recorded source must also be that very database.
 *
 * Entries written before `source` was recorded are taken to be of the environment's database:
 * every backup then was, except a pre-restore safety backup of a --targetConnectionStringEnv
 * target. Such an entry still shows the target's name in `database_name`, so when `current` is
 * known an old entry counts only if its database_name is the environment's database name.
 */
export function isEnvironmentDatabase(entry: BackupEntry, current?: BackupSource): boolean {
  if (entry.source)
    return entry.source.environment_database && (current === undefined || sameDatabase(entry.source, current));
  return current === undefined || entry.database_name === displayName(current);
}

/** The name a catalog entry records as database_name: the database, or the SQLite file's name. */
export function displayName(source: BackupSource): string {
  return engineOf(source.engine).displayName(source.database);
}

/** `database app on db.example.com:5432`, for confirmations and listings. */
export function describeSource(entry: Pick<BackupEntry, 'database_name' | 'source'>): string {
  const source = entry.source;
  if (!source) return `database ${entry.database_name}`;
  if (engineOf(source.engine).databaseIsFile) return `database file ${source.database}`;
  const server = source.host ? ` on ${source.host}${source.port ? `:${source.port}` : ''}` : '';
  return `database ${source.database}${server}`;
}
