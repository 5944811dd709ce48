import { createInterface } from 'node:readline/promises';
import { joinPathFragments, logger, readJson, readProjectConfiguration, type Tree } from '@nx/devkit';
import type { ConfigurationGeneratorOptions } from '../schema.d.ts';
import { configPathFor } from './normalize-options.ts';
import { MIGRATION_TOOLS, type MigrationTool } from '../../../src/config/schema.ts';
import { DEFAULT_MIGRATION_DIRECTORIES } from '../../../src/migrations/pending.ts';

type KnownTool = Exclude<MigrationTool, 'none'>;

export interface DetectedTool {
  tool: KnownTool;
  /** The file that gave it away, relative to the workspace root. */
  evidence: string;
}

/** Asks which tool to record; injectable for tests. null when nobody can be asked. */
export type MigrationToolQuestion = (question: string, choices: readonly MigrationTool[]) => Promise<MigrationTool>;

const SCRIPT_EXTENSIONS = ['ts', 'js', 'mjs', 'cjs', 'mts', 'cts'];
const SIGNATURE_FILES: Readonly<Record<Exclude<KnownTool, 'typeorm'>, readonly string[]>> = {
  prisma: ['prisma/schema.prisma', 'schema.prisma', 'prisma/schema', 'prisma/migrations'],
  knex: [...SCRIPT_EXTENSIONS, 'coffee'].map((extension) => `knexfile.${extension}`),
  drizzle: [...SCRIPT_EXTENSIONS, 'json'].map((extension) => `drizzle.config.${extension}`),
  flyway: ['flyway.conf', 'flyway.toml', 'conf/flyway.conf', 'conf/flyway.toml'],
};
/** Where TypeORM data sources usually live; `ormconfig.*` is the older form of the same. */
const TYPEORM_FILES = [
  ...['json', 'js', 'ts', 'yml', 'yaml'].map((extension) => `ormconfig.${extension}`),
  ...['', 'src/', 'src/db/', 'src/database/', 'src/config/'].flatMap((folder) =>
    ['data-source', 'datasource', 'typeorm.config', 'ormconfig'].flatMap((name) =>
      SCRIPT_EXTENSIONS.map((extension) => `${folder}${name}.${extension}`),
    ),
  ),
];
const TYPEORM_DATA_SOURCE = /new\s+DataSource\s*\(|from\s+['"]typeorm['"]/;

/** Migration tools whose files are in the project root (or, when it has none, the workspace root). */
export function detectMigrationTools(tree: Tree, projectRoot: string): DetectedTool[] {
  const inProject = detectIn(tree, projectRoot);
  return inProject.length > 0 || projectRoot === '.' || projectRoot === '' ? inProject : detectIn(tree, '.');
}

function detectIn(tree: Tree, root: string): DetectedTool[] {
  const found: DetectedTool[] = [];
  for (const [tool, files] of Object.entries(SIGNATURE_FILES) as Array<[KnownTool, readonly string[]]>) {
    const evidence = files.map((file) => joinPathFragments(root, file)).find((file) => tree.exists(file));
    if (evidence) found.push({ tool, evidence });
  }
  const dataSource = TYPEORM_FILES.map((file) => joinPathFragments(root, file)).find(
    (file) =>
      tree.exists(file) &&
      tree.isFile(file) &&
      (file.includes('ormconfig') || TYPEORM_DATA_SOURCE.test(tree.read(file, 'utf-8') ?? '')),
  );
  if (dataSource) found.push({ tool: 'typeorm', evidence: dataSource });
  return found;
}

/** The given tool, else the one an existing config file names (a rerun must not ask again), else detection. */
export async function chooseMigrationTool(
  tree: Tree,
  schema: ConfigurationGeneratorOptions,
  ask: MigrationToolQuestion | null,
): Promise<MigrationTool> {
  const projectRoot = readProjectConfiguration(tree, schema.project).root;
  if (schema.migrationTool) return schema.migrationTool;
  const recorded = schema.force
    ? undefined
    : configuredTool(tree, configPathFor(schema.scope ?? 'project', projectRoot));
  return recorded ?? resolveMigrationTool(tree, schema.project, projectRoot, ask);
}

function configuredTool(tree: Tree, configPath: string): MigrationTool | undefined {
  if (!tree.exists(configPath)) return undefined;
  try {
    const tool: unknown = readJson<{ database?: { migration_tool?: unknown } }>(tree, configPath).database
      ?.migration_tool;
    return MIGRATION_TOOLS.find((known) => known === tool);
  } catch {
    // A broken config is reported by writeConfigFile, with what to do about it.
    return undefined;
  }
}

/**
 * The tool detected; several or none → ask on a terminal, or fail without
 * one (a wrong guess records the wrong migration table in every backup).
 */
export async function resolveMigrationTool(
  tree: Tree,
  project: string,
  projectRoot: string,
  ask: MigrationToolQuestion | null,
): Promise<MigrationTool> {
  const detected = detectMigrationTools(tree, projectRoot);
  const [only] = detected;
  if (only && detected.length === 1) {
    logger.info(`${project} uses ${only.tool} (found ${only.evidence}); pass --migrationTool to choose another.`);
    return only.tool;
  }
  const found =
    detected.length === 0
      ? 'found no migration tool'
      : `found several migration tools (${detected.map((entry) => `${entry.tool}: ${entry.evidence}`).join(', ')})`;
  const choices = detected.length === 0 ? MIGRATION_TOOLS : [...detected.map((entry) => entry.tool), 'none' as const];
  if (ask) return ask(`In ${project} the generator ${found}. Which one migrates its database?`, choices);
  throw new Error(
    `In ${project} the generator ${found} (it looks for prisma/schema.prisma, knexfile.*, drizzle.config.*, a TypeORM data source, flyway.conf). ` +
      `Pass --migrationTool=${choices.join('|')}; none means the backups record no migrations.`,
  );
}

/** What Nx's own prompts require: a terminal, not CI, and prompts not turned off (--no-interactive). */
export function terminalQuestion(): MigrationToolQuestion | null {
  const interactive =
    Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI && process.env.NX_INTERACTIVE !== 'false';
  return interactive ? askOnTerminal : null;
}

async function askOnTerminal(question: string, choices: readonly MigrationTool[]): Promise<MigrationTool> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const listing = choices.map((choice, index) => `  ${index + 1}) ${choice}`).join('\n');
    for (;;) {
      const answer = (await prompt.question(`${question}\n${listing}\nNumber or name: `)).trim();
      const picked = choices[Number(answer) - 1] ?? choices.find((choice) => choice === answer);
      if (picked) return picked;
    }
  } finally {
    prompt.close();
  }
}

/** The tool's default migrations folder that exists in the project, if one does. */
export function existingMigrationsDirectory(tree: Tree, projectRoot: string, tool: MigrationTool): string | undefined {
  if (tool === 'none') return undefined;
  return DEFAULT_MIGRATION_DIRECTORIES[tool].find((candidate) =>
    tree.exists(joinPathFragments(projectRoot, candidate)),
  );
}

/** The migrations folder of a tool in the tree (the first default that exists, else the first default). */
export function migrationsDirectoryIn(
  tree: Tree,
  projectRoot: string,
  tool: MigrationTool,
  configured: string | undefined,
): string | undefined {
  if (tool === 'none') return undefined;
  const candidates = configured ? [configured] : DEFAULT_MIGRATION_DIRECTORIES[tool];
  return candidates.find((candidate) => tree.exists(joinPathFragments(projectRoot, candidate))) ?? candidates[0];
}
