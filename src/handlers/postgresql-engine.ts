import path from 'node:path';
import type { StoredFormat } from '../catalog/formats.ts';
import type { Engine } from './handler.ts';
import { requireTool } from './tools.ts';

const PGDMP_MAGIC = Buffer.from('PGDMP');

export const POSTGRESQL_ENGINE: Engine = {
  provider: 'postgresql',
  defaultPort: 5432,
  databaseIsFile: false,
  storedFormat: (requested) => requested,
  restoreMethod: (format: StoredFormat) =>
    format === 'sql' ? 'psql (ON_ERROR_STOP)' : `pg_restore${format === 'directory' ? ' -j' : ''}`,
  describeScratch: (scratch) => `a scratch database ${path.basename(scratch.name)}`,
  displayName: (database) => database,
  dumpMarks(format) {
    if (format === 'sql') return { trailers: ['-- PostgreSQL database dump complete'] };
    if (format === 'custom')
      return {
        header: {
          bytes: PGDMP_MAGIC,
          present: 'custom-format header present',
          missing: 'not a pg_dump custom-format archive (no PGDMP header)',
        },
      };
    return {};
  },
  formatCheck(format, env) {
    if (format !== 'custom' && format !== 'directory') return undefined;
    return { label: 'pg_restore --list', tool: requireTool('pg_restore', env), args: ['--list'] };
  },
};
