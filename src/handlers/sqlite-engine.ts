import path from 'node:path';
import type { Engine } from './handler.ts';

export const SQLITE_ENGINE: Engine = {
  provider: 'sqlite',
  defaultPort: null,
  databaseIsFile: true,
  // A SQLite backup is a database file whatever format the config names.
  storedFormat: () => 'sqlite',
  restoreMethod: () => 'an integrity check (PRAGMA integrity_check)',
  describeScratch: () => 'a temporary file',
  displayName: (database) => path.basename(database),
};
