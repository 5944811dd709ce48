import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { MigrationState } from '../catalog/schema.ts';
import { MIGRATION_TOOLS, type MigrationTool } from '../config/schema.ts';

/**
 * Which migrations are about to run: those in the project's migrations folder that the migration
 * table does not list. Each tool names its migrations differently in the table, so the folder is
 * read the way the tool reads it.
 */

type KnownTool = Exclude<MigrationTool, 'none'>;

/** Where each tool keeps its migrations by default, relative to the project root (first that exists wins). */
export const DEFAULT_MIGRATION_DIRECTORIES: Readonly<Record<KnownTool, readonly string[]>> = {
  prisma: ['prisma/migrations'],
  knex: ['migrations'],
  drizzle: ['drizzle'],
  typeorm: ['src/migrations', 'migrations', 'src/database/migrations'],
  flyway: ['sql', 'db/migration', 'src/main/resources/db/migration'],
};

export type PendingMigrations =
  { known: true; directory: string; pending: string[] } | { known: false; reason: string };

interface FolderMigration {
  /** What the tool writes into its table for this migration. */
  recordedAs: string;
  /** What people call it (drizzle records hashes; people use the journal's tag). */
  name: string;
}

interface FolderReading {
  migrations: FolderMigration[];
  /** Set when the folder holds migrations whose pending state cannot be told from names. */
  uncertain?: string;
}

const KNEX_EXTENSIONS = new Set(['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts', '.coffee', '.sql']);
const TYPEORM_CLASS = /export\s+(?:default\s+)?class\s+([A-Za-z_$][\w$]*)\s+implements\s+MigrationInterface/g;
const TYPEORM_NAME = /^\s*(?:public\s+)?name\s*=\s*(['"`])([^'"`]+)\1/gm;

export function isKnownTool(tool: string): tool is KnownTool {
  return tool !== 'none' && (MIGRATION_TOOLS as readonly string[]).includes(tool);
}

/** The migrations folder of a tool in a project: the configured one, else the tool's default that exists. */
export async function findMigrationsDirectory(
  tool: KnownTool,
  projectDirectory: string,
  configured: string | undefined,
): Promise<string | undefined> {
  const candidates = configured ? [configured] : DEFAULT_MIGRATION_DIRECTORIES[tool];
  for (const candidate of candidates) {
    const directory = path.resolve(projectDirectory, candidate);
    if (await isDirectory(directory)) return directory;
  }
  return undefined;
}

/**
 * Pending migrations for the state read from the database. `known: false` (with why) whenever
 * the answer would be a guess: no tool, no folder, a folder the tool would not read as we do.
 */
export async function pendingMigrations(
  state: MigrationState,
  projectDirectory: string,
  configuredDirectory: string | undefined,
): Promise<PendingMigrations> {
  if (!isKnownTool(state.tool))
    return { known: false, reason: 'no migration tool is configured or recognised (database.migration_tool)' };
  const tool = state.tool;
  const directory = await findMigrationsDirectory(tool, projectDirectory, configuredDirectory);
  if (!directory) {
    const looked = configuredDirectory ? [configuredDirectory] : DEFAULT_MIGRATION_DIRECTORIES[tool];
    return {
      known: false,
      reason: `no ${tool} migrations folder (looked for ${looked.join(', ')}; set migrations.directory)`,
    };
  }
  const reading = await readFolder(tool, directory);
  if (reading.uncertain) return { known: false, reason: reading.uncertain };
  const applied = new Set(state.migrations_list);
  const pending = reading.migrations
    .filter((migration) => !applied.has(migration.recordedAs))
    .map((migration) => migration.name);
  return { known: true, directory, pending };
}

async function readFolder(tool: KnownTool, directory: string): Promise<FolderReading> {
  switch (tool) {
    case 'prisma':
      return { migrations: (await subdirectories(directory)).map((name) => ({ name, recordedAs: name })) };
    case 'knex':
      return {
        migrations: (await files(directory))
          .filter((file) => KNEX_EXTENSIONS.has(path.extname(file)) && !file.endsWith('.d.ts'))
          .map((name) => ({ name, recordedAs: name })),
      };
    case 'drizzle':
      return readDrizzleJournal(directory);
    case 'typeorm':
      return readTypeormClasses(directory);
    case 'flyway':
      return readFlywayScripts(directory);
  }
}

/** Drizzle records the SHA-256 of each migration's SQL file; the journal lists them by tag. */
async function readDrizzleJournal(directory: string): Promise<FolderReading> {
  const journalPath = path.join(directory, 'meta', '_journal.json');
  const text = await readFile(journalPath, 'utf8').catch(() => undefined);
  if (text === undefined) return { migrations: [], uncertain: `no drizzle journal at ${journalPath}` };
  const tags = journalTags(text);
  if (!tags)
    return { migrations: [], uncertain: `the drizzle journal ${journalPath} is not the JSON drizzle-kit writes` };
  const migrations: FolderMigration[] = [];
  for (const tag of tags) {
    const sql = await readFile(path.join(directory, `${tag}.sql`)).catch(() => undefined);
    if (!sql) return { migrations: [], uncertain: `the drizzle journal lists ${tag} but ${tag}.sql is missing` };
    migrations.push({ name: tag, recordedAs: createHash('sha256').update(sql).digest('hex') });
  }
  return { migrations };
}

function journalTags(text: string): string[] | undefined {
  try {
    const journal: unknown = JSON.parse(text);
    if (typeof journal !== 'object' || journal === null || !('entries' in journal) || !Array.isArray(journal.entries))
      return undefined;
    const tags = journal.entries.map((entry: unknown) =>
      typeof entry === 'object' && entry !== null && 'tag' in entry ? entry.tag : undefined,
    );
    return tags.every((tag): tag is string => typeof tag === 'string') ? tags : undefined;
  } catch {
    return undefined;
  }
}

/** TypeORM records the migration's `name` property when it has one (the CLI writes it), else its class name. */
async function readTypeormClasses(directory: string): Promise<FolderReading> {
  const migrations: FolderMigration[] = [];
  for (const file of await files(directory)) {
    if (!/\.(c|m)?(t|j)s$/.test(file) || file.endsWith('.d.ts')) continue;
    const source = await readFile(path.join(directory, file), 'utf8');
    const classes = [...source.matchAll(TYPEORM_CLASS)].map((match) => match[1] ?? '');
    const names = [...source.matchAll(TYPEORM_NAME)].map((match) => match[2] ?? '');
    if (classes.length > 1 || names.length > classes.length)
      return { migrations: [], uncertain: `${file} holds more than one migration class` };
    const recordedAs = names[0] ?? classes[0];
    if (recordedAs) migrations.push({ name: recordedAs, recordedAs });
  }
  return { migrations };
}

/**
 * Versioned scripts (V<version>__<description>.sql) run once and are recorded by file name.
 * Repeatable ones (R__) run again whenever their checksum changes, which a name cannot tell.
 */
async function readFlywayScripts(directory: string): Promise<FolderReading> {
  const scripts = (await files(directory)).filter((file) => file.endsWith('.sql'));
  const repeatable = scripts.find((file) => file.startsWith('R__'));
  if (repeatable)
    return {
      migrations: [],
      uncertain: `repeatable Flyway migrations (${repeatable}) re-run when their content changes`,
    };
  return {
    migrations: scripts
      .filter((file) => /^V[^_]+__/.test(file))
      .sort(compareFlywayVersions)
      .map((name) => ({ name, recordedAs: name })),
  };
}

function compareFlywayVersions(a: string, b: string): number {
  const version = (file: string) => file.slice(1, file.indexOf('__')).split(/[._]/).map(Number);
  const [left, right] = [version(a), version(b)];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

async function isDirectory(directory: string): Promise<boolean> {
  return readdir(directory).then(
    () => true,
    () => false,
  );
}

async function entries(directory: string) {
  return (await readdir(directory, { withFileTypes: true })).sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

async function subdirectories(directory: string): Promise<string[]> {
  return (await entries(directory)).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
}

async function files(directory: string): Promise<string[]> {
  return (await entries(directory)).filter((entry) => entry.isFile()).map((entry) => entry.name);
}
