import type { Provider } from '../config/schema.ts';
import type { Engine } from './handler.ts';
import { MYSQL_ENGINE } from './mysql-engine.ts';
import { POSTGRESQL_ENGINE } from './postgresql-engine.ts';
import { SQLITE_ENGINE } from './sqlite-engine.ts';

const ENGINES: Record<Provider, Engine> = { postgresql: POSTGRESQL_ENGINE, mysql: MYSQL_ENGINE, sqlite: SQLITE_ENGINE };

/** The engine of a provider, for code that has a catalog entry but no handler. */
export function engineOf(provider: Provider): Engine {
  return ENGINES[provider];
}
