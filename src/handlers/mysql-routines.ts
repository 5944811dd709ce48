import { FaberError } from '../output/errors.ts';
import type { SqlReader } from './migrations.ts';

/** Database-level privileges that make MariaDB/MySQL list every routine of a database to a user. */
const ROUTINE_PRIVILEGES = "('EXECUTE', 'ALTER ROUTINE', 'CREATE ROUTINE')";

/**
 * mariadb-dump leaves out, exiting 0, every stored procedure and function the user cannot see:
 * the server lists a routine only to a user with a privilege on it, and shows its definition only
 * to its definer or to a user who may read mysql.proc. Fails with PERMISSION_DENIED when the dump
 * would lack some routine, and when the user cannot tell: it may not read mysql.proc and holds no
 * routine privilege on the whole database, so others' routines are invisible to it.
 */
export async function assertRoutinesReadable(reader: SqlReader, database: string): Promise<void> {
  const listed = await reader.query(
    `SELECT ROUTINE_TYPE AS type, ROUTINE_NAME AS name, ROUTINE_DEFINITION IS NOT NULL AS readable
       FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION')`,
    [database],
  );
  const readable = new Set(listed.filter((row) => Number(row.readable) === 1).map(routineName));
  const stored = await storedRoutines(reader, database);
  if (!stored && !(await seesEveryRoutine(reader, database))) {
    throw new FaberError(
      'PERMISSION_DENIED',
      `The user cannot see which stored procedures and functions ${database} has: the dump would silently leave out those other users defined`,
      { result: { database } },
    );
  }
  const missing = (stored ?? listed.map(routineName)).filter((name) => !readable.has(name));
  if (missing.length === 0) return;
  throw new FaberError(
    'PERMISSION_DENIED',
    `The user cannot read the definitions of ${missing.join(', ')}: the dump would leave them out`,
    {
      result: { database, unreadable_routines: missing },
    },
  );
}

function routineName(row: Record<string, unknown>): string {
  return `${String(row.type).toLowerCase()} ${String(row.name)}`;
}

/** Every routine of the database as mysql.proc has it; undefined when it cannot be read (no right; MySQL 8 has no mysql.proc). */
async function storedRoutines(reader: SqlReader, database: string): Promise<string[] | undefined> {
  try {
    const rows = await reader.query(
      `SELECT type, name FROM mysql.proc WHERE db = ? AND type IN ('PROCEDURE', 'FUNCTION')`,
      [database],
    );
    return rows.map(routineName);
  } catch {
    return undefined;
  }
}

/** A routine privilege on the whole database (or server) lists every routine in it to the user. */
async function seesEveryRoutine(reader: SqlReader, database: string): Promise<boolean> {
  const [row] = await reader.query(
    `SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN ${ROUTINE_PRIVILEGES})
          + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE ? LIKE TABLE_SCHEMA AND PRIVILEGE_TYPE IN ${ROUTINE_PRIVILEGES}) AS n`,
    [database],
  );
  return Number(row?.n) > 0;
}
