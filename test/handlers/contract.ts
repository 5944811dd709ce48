import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredFormat } from '../../src/catalog/formats.ts';
import type { Provider } from '../../src/config/schema.ts';
import { engineOf } from '../../src/handlers/engines.ts';
import type { DatabaseHandler, DatabaseTarget, Engine } from '../../src/handlers/handler.ts';
import { tracked, type FreshDatabase } from '../support/databases.ts';
import { SEEDED_MIGRATIONS, seedAwkwardData, tableChecksums } from '../support/fixtures.ts';
import { dumpTo, expectFaberError, makeHandler, PRISMA_DEFAULT, type DumpResult } from './helpers.ts';

/**
 * What every DatabaseHandler promises, run against each engine's real database (as restic runs
 * one backend suite against every backend): contract.test.ts has a describe per engine. What only
 * one engine does stays beside it in <engine>.test.ts.
 */
export interface ContractEngine {
  provider: Provider;
  /** The formats the handler writes and restores. */
  formats: readonly StoredFormat[];
  /** A format it does not have, and what its refusal says. */
  foreignFormat: { format: StoredFormat; refusal: RegExp };
  /** The seeded fixture's tables as inspect() names them. */
  expectedCounts: Record<string, number>;
  /** A table name as inspect() shows it (PostgreSQL qualifies it with its schema). */
  tableName(table: string): string;
  /** A new database (SQLite: a file not created yet). */
  fresh(): Promise<FreshDatabase>;
  /** The URL of another database (or file) next to `db`. */
  urlOf(db: FreshDatabase, target: DatabaseTarget): string;
  /** Runs statements in the database (or file) `url` names. */
  exec(url: string, statements: readonly string[]): Promise<void>;
  /** What preflight() names as its client tool. */
  clientTools: readonly string[];
  /** A dump the handler must refuse to load, and what its error quotes. */
  failingRestore: { dump: string; quoted: RegExp };
  /** Another session (or process) using the database `url`, which replace() must not break in on without force. */
  useDatabase(url: string): Promise<OtherSession>;
  /** Databases or files replace() might leave behind next to the live one (the live one excluded). */
  leftovers(live: FreshDatabase): Promise<string[]>;
  /** What only this engine checks after a restore (into `target`) and after a replace (of `live`). */
  afterRestore?(db: FreshDatabase, target: DatabaseTarget): Promise<void>;
  afterReplace?(live: FreshDatabase): Promise<void>;
  /** Called on `live` before replace(), with afterReplace. */
  beforeReplace?(live: FreshDatabase): Promise<void>;
}

export interface OtherSession {
  /** Part of the refusal's message: who uses the database. */
  named: string;
  /** True once the session was ended (by replace with force); engines without sessions (SQLite) have none to end. */
  ended?(): Promise<boolean>;
  close(): Promise<void>;
}

const EXPECTED_MIGRATIONS = {
  tool: 'prisma',
  table: '_prisma_migrations',
  applied_count: 2,
  last_migration: SEEDED_MIGRATIONS[1],
  migrations_list: [...SEEDED_MIGRATIONS],
};

function signal(): AbortSignal {
  return new AbortController().signal;
}

/** The engine's dump marks and format check hold for a real dump: the file checks rely on them. */
async function expectMarksAndFormatCheck(facts: Engine, format: StoredFormat, dump: DumpResult): Promise<void> {
  const { header, trailers } = facts.dumpMarks(format);
  if (dump.file) {
    const bytes = await readFile(dump.file);
    if (header) expect(bytes.subarray(0, header.bytes.length)).toEqual(header.bytes);
    if (trailers) expect(trailers.some((line) => bytes.subarray(-4096).toString('utf8').includes(line))).toBe(true);
  }
  const check = facts.formatCheck(format, process.env);
  if (check) {
    const input = dump.file ? { input: await readFile(dump.file) } : {};
    const result = spawnSync(check.tool.path, dump.directory ? [...check.args, dump.directory] : [...check.args], {
      ...input,
      env: process.env,
    });
    expect(result.status, String(result.stderr)).toBe(0);
  }
}

export function handlerContract(engine: ContractEngine): void {
  const track = tracked();
  const handlers: DatabaseHandler[] = [];
  let source: FreshDatabase;
  let handler: DatabaseHandler;
  let work: string;
  let sourceChecksums: Record<string, string>;

  async function handlerOf(db: FreshDatabase): Promise<DatabaseHandler> {
    const made = await makeHandler(engine.provider, db.url, path.join(work, 'tmp'));
    handlers.push(made);
    return made;
  }

  async function tables(own: DatabaseHandler, target: DatabaseTarget): Promise<string[]> {
    return Object.keys((await own.inspect(target, PRISMA_DEFAULT)).tableRowCounts);
  }

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), `faber-contract-${engine.provider}-`));
    source = await track(engine.fresh());
    await seedAwkwardData(engine.provider, source.url);
    sourceChecksums = await tableChecksums(engine.provider, source.url);
    handler = await handlerOf(source);
  });

  afterAll(async () => {
    for (const made of handlers) await made.close();
    await rm(work, { recursive: true, force: true });
  });

  it('its engine facts are the provider’s: formats, stored format, the name people type', () => {
    expect(handler.engine).toBe(engineOf(engine.provider));
    expect(handler.engine.provider).toBe(handler.provider);
    for (const format of engine.formats) {
      expect(handler.engine.storedFormat(format)).toBe(format);
      expect(typeof handler.extension(format)).toBe('string');
      expect(handler.backupMethod(format)).not.toBe('');
      expect(handler.engine.restoreMethod(format)).not.toBe('');
    }
    expect(() => handler.extension(engine.foreignFormat.format)).toThrow(engine.foreignFormat.refusal);
    const name = handler.engine.displayName(handler.live.name);
    expect(handler.engine.databaseIsFile ? path.basename(source.name) : source.name).toBe(name);
  });

  it('preflight reports the client tool, both versions and the database size', async () => {
    const info = await handler.preflight();
    expect(engine.clientTools).toContain(info.clientTool);
    expect(info.clientVersion).toMatch(/^\d+/);
    expect(info.serverVersion).toMatch(/\d+\.\d+/);
    expect(info.databaseSizeBytes).toBeGreaterThan(0);
  });

  it('scratch targets are unique, marked and not the live database', () => {
    const first = handler.scratchTarget('verify');
    const second = handler.scratchTarget('verify');
    expect(first.name).not.toBe(second.name);
    expect(first.name).toContain('__faber_verify_');
    expect(handler.scratchTarget('restore').name).toContain('__faber_restore_');
    expect(first.name).not.toBe(handler.live.name);
  });

  describe.each(engine.formats)('%s format', (format) => {
    it('restores into a scratch database with identical content; the snapshot matches it; drop empties it', async () => {
      const dump = await dumpTo(handler, format, work);
      await expectMarksAndFormatCheck(handler.engine, format, dump);
      expect(dump.snapshot.tableRowCounts).toEqual(engine.expectedCounts);
      expect(dump.snapshot.migrations).toEqual(EXPECTED_MIGRATIONS);
      const scratch = handler.scratchTarget('verify');
      await handler.createDatabase(scratch);
      try {
        expect(await handler.isEmpty(scratch)).toBe(true);
        await handler.restore(scratch, {
          format,
          ...(dump.directory
            ? { directory: dump.directory, parallelJobs: 2 }
            : { stream: createReadStream(dump.file!) }),
          signal: signal(),
        });
        expect(await tableChecksums(engine.provider, engine.urlOf(source, scratch))).toEqual(sourceChecksums);
        expect(await handler.inspect(scratch, PRISMA_DEFAULT)).toEqual(dump.snapshot);
        expect(await handler.isEmpty(scratch)).toBe(false);
        await engine.afterRestore?.(source, scratch);
      } finally {
        await handler.dropDatabase(scratch);
      }
      expect(await handler.isEmpty(scratch)).toBe(true);
    });
  });

  it('a dump that does not load → RESTORE_FAILED quoting why', async () => {
    const scratch = handler.scratchTarget('restore');
    await handler.createDatabase(scratch);
    try {
      const restoring = handler.restore(scratch, {
        format: engine.formats[0]!,
        stream: Readable.from([engine.failingRestore.dump]),
        signal: signal(),
      });
      const error = await expectFaberError(restoring, 'RESTORE_FAILED');
      expect(error.message).toMatch(engine.failingRestore.quoted);
    } finally {
      await handler.dropDatabase(scratch);
    }
  });

  it('replace() puts the restored copy in place of the live content and leaves no copy behind', async () => {
    const live = await track(engine.fresh());
    await engine.exec(live.url, ['CREATE TABLE old_marker (x INT)']);
    const liveHandler = await handlerOf(live);
    const restored = liveHandler.scratchTarget('restore');
    await liveHandler.createDatabase(restored);
    const dump = await dumpTo(handler, engine.formats[0]!, work);
    await liveHandler.restore(restored, {
      format: engine.formats[0]!,
      stream: createReadStream(dump.file!),
      signal: signal(),
    });
    await engine.beforeReplace?.(live);

    await liveHandler.replace(liveHandler.live, restored, { force: false });

    // Before anything else opens the live database (a reader of a WAL file may leave -wal/-shm).
    expect(await engine.leftovers(live)).toEqual([]);
    expect(await tableChecksums(engine.provider, live.url)).toEqual(sourceChecksums);
    expect(await liveHandler.isEmpty(restored)).toBe(true);
    await engine.afterReplace?.(live);
  });

  it('replace() refuses while another session uses the live database, changing nothing; force replaces it anyway', async () => {
    const live = await track(engine.fresh());
    await engine.exec(live.url, ['CREATE TABLE old_marker (x INT)']);
    const liveHandler = await handlerOf(live);
    const restored = liveHandler.scratchTarget('restore');
    await liveHandler.createDatabase(restored);
    await engine.exec(engine.urlOf(live, restored), ['CREATE TABLE new_content (x INT)']);
    const other = await engine.useDatabase(live.url);
    try {
      const error = await expectFaberError(
        liveHandler.replace(liveHandler.live, restored, { force: false }),
        'CONNECTION_FAILED',
      );
      expect(error.message).toContain(other.named);
      expect(error.suggestions.join(' ')).toContain('--force');
      await expectFaberError(liveHandler.assertNotInUse(liveHandler.live, { force: false }), 'CONNECTION_FAILED');
      expect(await tables(liveHandler, liveHandler.live)).toEqual([engine.tableName('old_marker')]);
      expect(await liveHandler.isEmpty(restored)).toBe(false);

      await liveHandler.replace(liveHandler.live, restored, { force: true });
      if (other.ended) expect(await other.ended()).toBe(true);
      expect((await liveHandler.inspect(liveHandler.live, PRISMA_DEFAULT)).tableRowCounts).toEqual({
        [engine.tableName('new_content')]: 0,
      });
      expect(await liveHandler.isEmpty(restored)).toBe(true);
    } finally {
      await other.close();
    }
  });
}
