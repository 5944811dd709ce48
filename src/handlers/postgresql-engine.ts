import path from 'node:path';
import type { StoredFormat } from '../catalog/formats.ts';
import type { Engine } from './handler.ts';

export const POSTGRESQL_ENGINE: Engine = {
  provider: 'postgresql',
  defaultPort: 5432,
  databaseIsFile: false,
  storedFormat: (requested) => requested,
  restoreMethod: (format: StoredFormat) => (format === 'sql' ? 'psql (ON_ERROR_STOP)' : `pg_restore${format === 'directory' ? ' -j' : ''}`),
  describeScratch: (scratch) => `a scratch database ${path.basename(scratch.name)}`,
  displayName: (database) => database,
};
