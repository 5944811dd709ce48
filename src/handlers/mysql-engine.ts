import path from 'node:path';
import { FaberError } from '../output/errors.ts';
import type { Engine } from './handler.ts';

export const MYSQL_ENGINE: Engine = {
  provider: 'mysql',
  defaultPort: 3306,
  databaseIsFile: false,
  storedFormat(requested) {
    if (requested === 'sql') return requested;
    throw new FaberError(
      'INVALID_OPTION',
      `The ${requested} format is PostgreSQL-only; MySQL/MariaDB backups are SQL dumps`,
      {
        result: { format: requested, provider: 'mysql' },
        suggestions: ['Use --format=sql (the default), or remove "format" from the config'],
      },
    );
  },
  restoreMethod: () => 'the mysql client',
  describeScratch: (scratch) => `a scratch database ${path.basename(scratch.name)}`,
  displayName: (database) => database,
  dumpMarks: () => ({ trailers: ['-- Dump completed'] }),
  formatCheck: () => undefined,
};
