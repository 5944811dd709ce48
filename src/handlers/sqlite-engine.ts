import path from 'node:path';
import type { Engine } from './handler.ts';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0');

export const SQLITE_ENGINE: Engine = {
  provider: 'sqlite',
  defaultPort: null,
  databaseIsFile: true,
  // A SQLite backup is a database file whatever format the config names.
  storedFormat: () => 'sqlite',
  restoreMethod: () => 'an integrity check (PRAGMA integrity_check)',
  describeScratch: () => 'a temporary file',
  displayName: (database) => path.basename(database),
  dumpMarks: () => ({
    header: {
      bytes: SQLITE_MAGIC,
      present: 'SQLite header present',
      missing: 'not a SQLite database (no SQLite header)',
    },
  }),
  // PRAGMA integrity_check: the handler runs it on the snapshot copy, the file check in pipeline/verify.ts.
  formatCheck: () => undefined,
};
