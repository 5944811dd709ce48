import type { MigrationState } from '../catalog/schema.ts';
import type { MigrationTool } from '../config/schema.ts';
import { FaberError } from '../output/errors.ts';
import type { MigrationLookup } from './handler.ts';

/**
 * Reads which migrations a database has applied, from the history table of the migration tool.
 * A missing table means nothing was applied yet (applied_count 0), never an error.
 */

export type SqlDialect = 'postgresql' | 'mysql' | 'sqlite';

/** A read-only query runner bound to one connection (and, where it matters, one transaction). */
export interface SqlReader {
  dialect: SqlDialect;
  /** Placeholders are `$1, $2` on PostgreSQL and `?` elsewhere. */
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /** PostgreSQL: schema of unqualified tables (Prisma's `?schema=`); otherwise the search path decides. */
  defaultSchema?: string;
}

type KnownTool = Exclude<MigrationTool, 'none'>;

interface ToolTable {
  table: string;
  /** Where the tool keeps its table on PostgreSQL when it is not the search path's schema. */
  postgresSchema?: string;
  /** Column whose value names a migration. */
  name: string;
  applied?: string;
  order: string;
  /** Columns that identify the tool's table when the tool is not configured. */
  signature: readonly string[];
}

const TOOL_TABLES: Record<KnownTool, ToolTable> = {
  prisma: {
    table: '_prisma_migrations',
    name: 'migration_name',
    applied: 'finished_at IS NOT NULL AND rolled_back_at IS NULL',
    order: 'started_at, migration_name',
    signature: ['migration_name', 'finished_at', 'rolled_back_at'],
  },
  knex: { table: 'knex_migrations', name: 'name', order: 'id', signature: ['name', 'batch', 'migration_time'] },
  // Drizzle records no names, only the SHA-256 of each migration file and its journal timestamp.
  drizzle: {
    table: '__drizzle_migrations',
    postgresSchema: 'drizzle',
    name: 'hash',
    order: 'created_at, id',
    signature: ['hash', 'created_at'],
  },
  typeorm: { table: 'migrations', name: 'name', order: 'id', signature: ['timestamp', 'name'] },
  flyway: {
    table: 'flyway_schema_history',
    name: 'script',
    applied: 'success = TRUE',
    order: 'installed_rank',
    signature: ['installed_rank', 'script', 'success'],
  },
};

const DETECTION_ORDER: readonly KnownTool[] = ['prisma', 'flyway', 'knex', 'drizzle', 'typeorm'];

interface TableRef {
  schema: string | undefined;
  name: string;
}

export function quoteIdentifier(dialect: SqlDialect, identifier: string): string {
  if (dialect === 'mysql') return '`' + identifier.replaceAll('`', '``') + '`';
  return '"' + identifier.replaceAll('"', '""') + '"';
}

function qualified(dialect: SqlDialect, ref: TableRef): string {
  const table = quoteIdentifier(dialect, ref.name);
  return ref.schema ? `${quoteIdentifier(dialect, ref.schema)}.${table}` : table;
}

function displayName(ref: TableRef): string {
  return ref.schema ? `${ref.schema}.${ref.name}` : ref.name;
}

function parseTableOption(table: string): TableRef {
  const dot = table.indexOf('.');
  return dot < 0 ? { schema: undefined, name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

function defaultTableRef(tool: KnownTool, reader: SqlReader): TableRef {
  const definition = TOOL_TABLES[tool];
  const schema = reader.dialect === 'postgresql' ? (definition.postgresSchema ?? reader.defaultSchema) : undefined;
  return { schema, name: definition.table };
}

/** Lower-cased column names of a table, or undefined when it does not exist. */
async function columnsOf(reader: SqlReader, ref: TableRef): Promise<string[] | undefined> {
  const rows = await reader.query(...columnsQuery(reader.dialect, ref));
  if (rows.length === 0) return undefined;
  return rows.map((row) => String(row.name).toLowerCase());
}

function columnsQuery(dialect: SqlDialect, ref: TableRef): [string, unknown[]] {
  switch (dialect) {
    case 'postgresql':
      // to_regclass resolves an unqualified name through the search path, like the tools do.
      return [
        `SELECT attname AS name FROM pg_catalog.pg_attribute
         WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
        [qualified(dialect, ref)],
      ];
    case 'mysql':
      return [
        `SELECT column_name AS name FROM information_schema.columns
         WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? ORDER BY ordinal_position`,
        [ref.schema ?? null, ref.name],
      ];
    case 'sqlite':
      return ['SELECT name FROM pragma_table_info(?, ?)', [ref.name, ref.schema ?? 'main']];
  }
}

function detectTool(columns: readonly string[]): KnownTool | undefined {
  return DETECTION_ORDER.find((tool) => TOOL_TABLES[tool].signature.every((column) => columns.includes(column)));
}

function emptyState(tool: string, table: string | null): MigrationState {
  return { tool, table, applied_count: 0, last_migration: null, migrations_list: [] };
}

async function appliedMigrations(reader: SqlReader, tool: KnownTool, ref: TableRef): Promise<string[]> {
  const definition = TOOL_TABLES[tool];
  const where = definition.applied ? ` WHERE ${definition.applied}` : '';
  const rows = await reader.query(
    `SELECT ${definition.name} AS name FROM ${qualified(reader.dialect, ref)}${where} ORDER BY ${definition.order}`,
  );
  return rows.map((row) => String(row.name));
}

/**
 * Migration state per the config: `tool` decides the table and its columns; an explicit `table`
 * overrides the table (and, without a tool, the tool is recognised from its columns); with
 * neither, Prisma's table is tried.
 */
export async function readMigrationState(reader: SqlReader, lookup: MigrationLookup): Promise<MigrationState> {
  if (lookup.tool === 'none') return emptyState('none', null);
  const explicitRef = lookup.table ? parseTableOption(lookup.table) : undefined;
  const ref = explicitRef ?? defaultTableRef(lookup.tool ?? 'prisma', reader);
  const columns = await columnsOf(reader, ref);
  if (!columns)
    return emptyState(
      lookup.tool ?? (explicitRef ? 'unknown' : 'none'),
      lookup.tool || explicitRef ? displayName(ref) : null,
    );

  const tool = lookup.tool ?? detectTool(columns);
  if (!tool) {
    throw new FaberError(
      'CONFIG_INVALID',
      `The migrations table ${displayName(ref)} does not look like the table of a known migration tool (prisma, knex, drizzle, typeorm, flyway)`,
      {
        result: { table: displayName(ref), columns },
        suggestions: ['Set database.migration_tool in .fractary/plugins/faber-db/config.json'],
      },
    );
  }
  const names = await appliedMigrations(reader, tool, ref);
  return {
    tool,
    table: displayName(ref),
    applied_count: names.length,
    last_migration: names.at(-1) ?? null,
    migrations_list: names,
  };
}
