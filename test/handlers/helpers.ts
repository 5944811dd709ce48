import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { StoredFormat } from '../../src/catalog/formats.ts';
import { parseConnectionUrl } from '../../src/config/connection.ts';
import type { Provider } from '../../src/config/schema.ts';
import { FaberError } from '../../src/output/errors.ts';
import type { DatabaseHandler, DatabaseSnapshot, MigrationLookup } from '../../src/handlers/handler.ts';
import { createHandler } from '../../src/handlers/index.ts';
import type { FreshDatabase } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';

export const PRISMA_DEFAULT: MigrationLookup = { tool: undefined, table: undefined };

export async function makeHandler(
  provider: Provider,
  url: string,
  tempDirectory: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DatabaseHandler> {
  return createHandler(parseConnectionUrl(url, provider, process.cwd()), { env, tempDirectory });
}

/** A fresh database seeded with the awkward data, and a handler on it with a work directory of its own. */
export async function seededHandler(
  provider: 'postgresql' | 'mysql',
  fresh: () => Promise<FreshDatabase>,
  created: FreshDatabase[],
): Promise<{ work: string; source: FreshDatabase; handler: DatabaseHandler }> {
  const work = await mkdtemp(path.join(os.tmpdir(), `faber-${provider}-`));
  const source = await fresh();
  created.push(source);
  await seedAwkwardData(provider, source.url);
  return { work, source, handler: await makeHandler(provider, source.url, work) };
}

/** Undoes seededHandler: closes the handler, drops every database the file made, removes the work directory. */
export async function disposeSeeded(
  handler: DatabaseHandler | undefined,
  created: readonly FreshDatabase[],
  work: string | undefined,
): Promise<void> {
  await handler?.close();
  await Promise.all(created.map((db) => db.drop()));
  if (work) await rm(work, { recursive: true, force: true });
}

export interface DumpResult {
  snapshot: DatabaseSnapshot;
  file?: string;
  directory?: string;
}

/** Runs a whole dump into `workDirectory`: a file for single-file formats, a directory otherwise. */
export async function dumpTo(
  handler: DatabaseHandler,
  format: StoredFormat,
  workDirectory: string,
  migrations = PRISMA_DEFAULT,
): Promise<DumpResult> {
  const signal = new AbortController().signal;
  const tag = randomBytes(4).toString('hex');
  if (format === 'directory') {
    const directory = path.join(workDirectory, `dump-${tag}`);
    const session = await handler.startDump({ format, directory, parallelJobs: 2, migrations, signal });
    await session.finished;
    return { snapshot: await session.snapshot, directory };
  }
  const file = path.join(workDirectory, `dump-${tag}.${handler.extension(format)}`);
  const session = await handler.startDump({ format, migrations, signal });
  await Promise.all([pipeline(session.stream!, createWriteStream(file)), session.finished]);
  return { snapshot: await session.snapshot, file };
}

interface ProcessInfo {
  pid: number;
  name: string;
  parent: number;
}

async function processInfo(pid: number): Promise<ProcessInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split at the last ')'.
    const close = stat.lastIndexOf(')');
    const parent = Number(stat.slice(close + 2).split(' ')[1]);
    return { pid, name: stat.slice(stat.indexOf('(') + 1, close), parent };
  } catch {
    return undefined;
  }
}

/** Children of this test process with the given command name (Linux /proc). */
export async function childProcesses(name: string): Promise<number[]> {
  const entries = await readdir('/proc');
  const infos = await Promise.all(
    entries.filter((entry) => /^\d+$/.test(entry)).map((entry) => processInfo(Number(entry))),
  );
  return infos
    .filter((info): info is ProcessInfo => info?.parent === process.pid && info.name === name)
    .map((info) => info.pid);
}

/**
 * True once the process runs the program itself and exec has finished setting it up: its
 * executable is named `name` (not `stdbuf`, nor Debian's Perl wrapper `/usr/bin/pg_dump`, which
 * both exec the tool in the same process, and whose argv and environment vanish meanwhile), and
 * its argv and environment are readable.
 */
async function execComplete(pid: number, name: string): Promise<boolean> {
  try {
    const [executable, cmdline, environ] = await Promise.all([
      readlink(`/proc/${pid}/exe`),
      readFile(`/proc/${pid}/cmdline`),
      readFile(`/proc/${pid}/environ`),
    ]);
    return path.basename(executable) === name && cmdline.length > 0 && environ.length > 0;
  } catch {
    return false;
  }
}

/**
 * The pid of a child of this test process with the given command name, once it runs that
 * program (see execComplete). The kernel renames a process before it maps its argv and
 * environment, so wait for those too.
 */
export async function waitForChild(name: string, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [pid] = await childProcesses(name);
    if (pid && (await execComplete(pid, name))) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`No child process named ${name} appeared within ${timeoutMs} ms`);
}

/** argv or environment of a process as one string (NULs become spaces). */
export async function procText(pid: number, file: 'cmdline' | 'environ'): Promise<string> {
  return (await readFile(`/proc/${pid}/${file}`, 'utf8')).replaceAll('\0', ' ');
}

/** Awaits a promise that must reject with a FaberError of `code`; returns the error. */
export async function expectFaberError(promise: Promise<unknown>, code: string): Promise<FaberError> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof FaberError))
      throw new Error(`Expected FaberError ${code}, got ${String(error)}`, { cause: error });
    if (error.code !== code) throw new Error(`Expected ${code}, got ${error.code}: ${error.message}`, { cause: error });
    return error;
  }
  throw new Error(`Expected FaberError ${code}, but the promise resolved`);
}

/** Everything an error would show anywhere: message, facts, suggestions, cause chain. */
export function everythingShown(error: FaberError): string {
  const causes: string[] = [];
  for (let cause: unknown = error.cause; cause; cause = (cause as { cause?: unknown }).cause) {
    causes.push(cause instanceof Error ? `${cause.message} ${cause.stack ?? ''}` : JSON.stringify(cause));
  }
  return [error.message, error.stack ?? '', JSON.stringify(error.result), error.suggestions.join('\n'), ...causes].join(
    '\n',
  );
}

/** Asserts that neither a secret nor its percent-encoded form appears in a text. */
export function secretForms(secret: string): string[] {
  return [secret, encodeURIComponent(secret)];
}
