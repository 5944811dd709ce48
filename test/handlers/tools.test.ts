import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyMessage } from '../../src/handlers/failures.ts';
import { siblingName } from '../../src/handlers/names.ts';
import { sweepAbandonedFiles, writeSecretFile } from '../../src/handlers/secret-file.ts';
import { findTool, requireTool, runTool, toolVersion, type ClientTool } from '../../src/handlers/tools.ts';
import { expectFaberError } from './helpers.ts';

// Stand-in executables (small shell scripts) exercise the runner's logic; the handler suites run
// the real pg_dump, psql, pg_restore, mariadb-dump and mariadb.

let work: string;

async function script(directory: string, name: string, body: string, mode = 0o755): Promise<string> {
  await mkdir(directory, { recursive: true });
  const file = path.join(directory, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, mode);
  return file;
}

async function tool(body: string): Promise<ClientTool> {
  const name = `tool-${Math.random().toString(36).slice(2)}`;
  return { role: 'psql', name, path: await script(path.join(work, 'scripts'), name, body) };
}

function options(overrides: Partial<Parameters<typeof runTool>[2]> = {}): Parameters<typeof runTool>[2] {
  return {
    env: { PATH: process.env.PATH },
    signal: new AbortController().signal,
    secrets: [],
    failureCode: 'BACKUP_FAILED',
    stdout: 'ignore',
    ...overrides,
  };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'faber-tools-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('finding client tools', () => {
  it("prefers MariaDB's names anywhere on PATH over MySQL's, and skips files that are not executable", async () => {
    const first = path.join(work, 'first');
    const second = path.join(work, 'second');
    await script(first, 'mysqldump', 'echo mysql');
    await script(first, 'mariadb', 'echo not executable', 0o644);
    await script(second, 'mariadb-dump', 'echo mariadb');
    await script(second, 'mysql', 'echo mysql client');
    const env = { PATH: `${first}${path.delimiter}${second}` };
    expect(findTool('mysql-dump', env)).toEqual({
      role: 'mysql-dump',
      name: 'mariadb-dump',
      path: path.join(second, 'mariadb-dump'),
    });
    expect(findTool('mysql-client', env)?.path).toBe(path.join(second, 'mysql'));
    expect(findTool('pg_dump', env)).toBeUndefined();
  });

  it('a missing tool → TOOL_NOT_FOUND with install commands for its engine', () => {
    let error: unknown;
    try {
      requireTool('pg_restore', { PATH: path.join(work, 'empty') });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'TOOL_NOT_FOUND', result: { tool: 'pg_restore' } });
    expect((error as { suggestions: string[] }).suggestions).toEqual(
      expect.arrayContaining([expect.stringContaining('apt-get install postgresql-client')]),
    );
  });

  it('reads the first line of --version', async () => {
    const versioned = await tool('echo "pg_dump (PostgreSQL) 16.3 (Debian)"; echo second line');
    expect(await toolVersion(versioned, {})).toBe('pg_dump (PostgreSQL) 16.3 (Debian)');
  });
});

describe('running client tools', () => {
  it('streams stdout and resolves on exit 0', async () => {
    const echo = await tool('cat');
    const run = runTool(echo, [], options({ stdout: 'pipe', input: Readable.from(['hello ', 'world']) }));
    const chunks: Buffer[] = [];
    run.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
    await run.done;
    expect(Buffer.concat(chunks).toString()).toBe('hello world');
  });

  it('a tool that stops reading its input early and exits 0 leaves the rest to the caller (pg_restore does)', async () => {
    const reader = await tool('head -c 10 > /dev/null');
    // 64 MB: more than the pipe and the socket's buffers hold, so the feed is still waiting when the tool exits.
    const input = Readable.from(Array.from({ length: 64 }, () => Buffer.alloc(1024 * 1024, 'x')));
    await runTool(reader, [], options({ input })).done;
    let rest = 0;
    input.on('data', (chunk: Buffer) => (rest += chunk.length));
    input.resume();
    await new Promise((resolve) => input.once('end', resolve));
    expect(rest).toBeGreaterThan(0);
    expect(rest).toBeLessThan(64 * 1024 * 1024);
  });

  it('a failure quotes stderr with the secret removed, and is classified', async () => {
    const failing = await tool(
      'echo "connection to server failed: FATAL:  password authentication failed for user \\"app\\" (pw: Pa55:w@rd/%)" >&2; exit 2',
    );
    const error = await expectFaberError(
      runTool(failing, [], options({ secrets: ['Pa55:w@rd/%'] })).done,
      'AUTHENTICATION_FAILED',
    );
    expect(error.message).toContain('exited with code 2');
    expect(error.message).toContain('pw: ***');
    expect(error.message).not.toContain('Pa55');
    expect(error.result).toMatchObject({ exit_code: 2 });

    const plain = await tool('echo "ERROR: relation does not exist" >&2; exit 1');
    await expectFaberError(runTool(plain, [], options({ failureCode: 'RESTORE_FAILED' })).done, 'RESTORE_FAILED');
  });

  it('keeps only the beginning and the end of a huge stderr', async () => {
    const noisy = await tool(
      `echo FIRST-LINE >&2; head -c 1000000 /dev/zero | tr '\\0' 'x' >&2; echo; echo LAST-LINE >&2; exit 1`,
    );
    const error = await expectFaberError(runTool(noisy, [], options()).done, 'BACKUP_FAILED');
    expect(error.message.length).toBeLessThan(20_000);
    expect(error.message).toContain('FIRST-LINE');
    expect(error.message).toContain('LAST-LINE');
    expect(error.message).toContain('[...]');
  });

  it('aborting kills the child (SIGTERM) and rejects with CANCELLED', async () => {
    const sleeper = await tool('exec sleep 30');
    const controller = new AbortController();
    const run = runTool(sleeper, [], options({ signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    await expectFaberError(run.done, 'CANCELLED');
    expect(Date.now() - started).toBeLessThan(20_000); // the sleep would take 30 s
    expect(existsSync(`/proc/${run.pid}`)).toBe(false);
  });

  it('a child that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
    const stubborn = await tool("trap '' TERM; while :; do sleep 0.1; done");
    const run = runTool(stubborn, [], options());
    await new Promise((resolve) => setTimeout(resolve, 100));
    run.kill();
    await expectFaberError(run.done, 'CANCELLED');
    expect(existsSync(`/proc/${run.pid}`)).toBe(false);
  });

  it('an input stream that fails kills the child instead of closing its stdin', async () => {
    const marker = path.join(work, 'saw-eof');
    // Writes the marker only if it reads to the end of its input.
    const reader = await tool(`cat > /dev/null && touch '${marker}'`);
    async function* failing() {
      yield 'partial input\n';
      await new Promise((resolve) => setTimeout(resolve, 100));
      throw new Error('decompression failed');
    }
    const error = await expectFaberError(
      runTool(reader, [], options({ input: Readable.from(failing()) })).done,
      'BACKUP_FAILED',
    );
    expect(error.message).toContain('decompression failed');
    expect(existsSync(marker)).toBe(false);
  });
});

describe('recognising failures and naming things', () => {
  it.each([
    ['FATAL:  password authentication failed for user "app"', 'AUTHENTICATION_FAILED'],
    ['FATAL:  role "nobody" does not exist', 'AUTHENTICATION_FAILED'],
    ["ERROR 1045 (28000): Access denied for user 'app'@'10.0.0.1' (using password: YES)", 'AUTHENTICATION_FAILED'],
    ["ERROR 1044 (42000): Access denied for user 'app'@'%' to database 'app__faber_restore_1'", 'PERMISSION_DENIED'],
    ['ERROR:  permission denied to create database', 'PERMISSION_DENIED'],
    ['pg_dump: error: query failed: ERROR:  permission denied for table secrets', 'PERMISSION_DENIED'],
    [
      'ERROR 1227 (42000) at line 9: Access denied; you need (at least one of) the SUPER, SET USER privilege(s) for this operation',
      'PERMISSION_DENIED',
    ],
    ['pg_dump: error: could not open output file "x": Permission denied', undefined],
    ['connection to server at "127.0.0.1", port 1 failed: Connection refused', 'CONNECTION_FAILED'],
    ["ERROR 2002 (HY000): Can't connect to server on '10.1.1.1' (115)", 'CONNECTION_FAILED'],
    ['could not translate host name "db.invalid" to address', 'CONNECTION_FAILED'],
    ['FATAL:  database "gone" does not exist', 'CONNECTION_FAILED'],
    ['pg_dump: error: aborting because of server version mismatch', 'TOOL_VERSION_MISMATCH'],
    ['ERROR:  syntax error at or near "x"', undefined],
  ])('%s → %s', (message, expected) => {
    expect(classifyMessage(message)).toBe(expected);
  });

  it('sibling names keep the suffix whole and never split a character', () => {
    expect(siblingName('app', '__faber_verify_0123abcd', 63)).toBe('app__faber_verify_0123abcd');
    const cut = siblingName('€'.repeat(30), '__faber_old_x', 63);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(63);
    expect(cut).toBe('€'.repeat(16) + '__faber_old_x');
  });
});

describe('private files of killed runs', () => {
  it('are swept once their process is gone and they are over a minute old; nothing else is touched', async () => {
    const directory = path.join(work, 'sweep');
    await mkdir(directory);
    const deadPid = spawnSync('true').pid;
    const hourAgo = new Date(Date.now() - 3_600_000);
    const files = {
      deadOld: `faber-pgpass-${deadPid}-0a1b2c3d4e5f`,
      deadOldCopy: `faber-sqlite-${deadPid}-0a1b2c3d4e5f.sqlite`,
      deadRecent: `faber-my-${deadPid}-abcdefabcdef`,
      aliveOld: `faber-my-1-abcdefabcdef`,
      unrelated: `notes-${deadPid}.txt`,
    };
    for (const [key, name] of Object.entries(files)) {
      await writeFile(path.join(directory, name), 'x');
      if (key !== 'deadRecent') await utimes(path.join(directory, name), hourAgo, hourAgo);
    }
    await sweepAbandonedFiles(directory);
    expect((await readdir(directory)).sort()).toEqual([files.aliveOld, files.deadRecent, files.unrelated].sort());

    const secret = await writeSecretFile(directory, 'pgpass', 'secret');
    expect(path.basename(secret.path)).toMatch(new RegExp(`^faber-pgpass-${process.pid}-[0-9a-f]{12}$`));
    await secret.remove();
    await secret.remove();
    expect(existsSync(secret.path)).toBe(false);
  });
});
