import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ExecutorContext } from '@nx/devkit';
import { describe, expect, it, vi } from 'vitest';
import listBackupsExecutor from '../../executors/list-backups/executor.ts';
import { listBackups, type ListResultData } from '../../src/operations/list.ts';
import type { OperationResult } from '../../src/output/result.ts';
import { silentReporter } from '../../src/output/reporter.ts';
import { makeEntry } from '../support/entries.ts';
import { makeWorkspace } from '../support/workspace.ts';
import { writeCatalog } from './catalog-fixture.ts';

function data(result: OperationResult<ListResultData>): ListResultData {
  if (result.status !== 'success') throw new Error(`${result.error_code}: ${result.error}`);
  return result.result;
}

const sqliteConfig = { database: { provider: 'sqlite' as const } };

describe('list-backups', () => {
  it('lists the current project newest first, with the seed shape, filters and a limit', async () => {
    const workspace = await makeWorkspace(sqliteConfig);
    const entries = [
      makeEntry({ project: 'api', environment: 'production', created_at: '2025-01-01T00:00:00.000Z', label: 'first' }),
      makeEntry({ project: 'api', environment: 'dev', created_at: '2025-01-02T00:00:00.000Z' }),
      makeEntry({
        project: 'api',
        environment: 'production',
        created_at: '2025-01-03T00:00:00.000Z',
        status: 'verification_failed',
      }),
      makeEntry({
        project: 'api',
        environment: 'production',
        created_at: '2025-01-04T00:00:00.000Z',
        reason: 'pre-migration',
        pinned: true,
      }),
      makeEntry({ project: 'web', environment: 'production', created_at: '2025-01-05T00:00:00.000Z' }),
    ];
    entries[0]!.migrations.applied_count = 24;
    await writeCatalog(workspace, entries);

    const all = await listBackups({}, workspace.ctx());
    expect(all).toMatchObject({ status: 'success', operation: 'list-backups', result: { total: 4 } });
    const ids = data(all).backups.map((backup) => backup.backup_id);
    expect(ids).toEqual([entries[3], entries[2], entries[1], entries[0]].map((entry) => entry?.backup_id));
    const oldest = data(all).backups.at(-1);
    expect(oldest).toMatchObject({ ...entries[0], size_human: '1.0 KB', migrations_count: 24 });

    const production = data(await listBackups({ environment: 'production', sort: 'asc', limit: 2 }, workspace.ctx()));
    expect(production.total).toBe(3);
    expect(production.backups.map((backup) => backup.backup_id)).toEqual([
      entries[0]?.backup_id,
      entries[2]?.backup_id,
    ]);

    const failed = data(await listBackups({ status: 'verification_failed' }, workspace.ctx()));
    expect(failed.backups.map((backup) => backup.backup_id)).toEqual([entries[2]?.backup_id]);
  });

  it('prints a table for people between the banners', async () => {
    const workspace = await makeWorkspace(sqliteConfig);
    await writeCatalog(workspace, [
      makeEntry({
        project: 'api',
        environment: 'dev',
        created_at: '2025-01-24T14:00:00.000Z',
        label: 'nightly',
        reason: 'scheduled',
      }),
      makeEntry({
        project: 'api',
        environment: 'dev',
        created_at: '2025-01-25T14:00:00.000Z',
        status: 'missing',
        pinned: true,
      }),
    ]);
    await listBackups({ environment: 'dev' }, workspace.ctx());
    const lines = workspace.output
      .filter((line) => line.startsWith('info'))
      .map((line) => (JSON.parse(line.slice(5)) as string[])[0] ?? '');
    expect(lines[0]).toMatch(
      /^ID\s+CREATED \(UTC\)\s+SIZE\s+ENV\s+DATABASE\s+LABEL\s+REASON\s+MIGRATIONS\s+VERIFIED\s+EXPIRES$/,
    );
    expect(lines[1]).toMatch(/2025-01-25 14:00\s+1\.0 KB\s+dev\s+app\s+-\s+-\s+0\s+✗ missing\s+pinned$/);
    expect(lines[2]).toMatch(
      /2025-01-24 14:00\s+1\.0 KB\s+dev\s+app\s+nightly\s+scheduled\s+0\s+✓ 2025-01-24\s+2025-04-24$/,
    );
    expect(workspace.output[0]).toMatch(/^start .*Backup Manager.*"Operation":"list-backups"/);
    expect(workspace.output.at(-1)).toMatch(/^complete .*Backup Manager/);
  });

  it('succeeds with an empty list when there is no catalog yet, and rejects unknown environments and bad options', async () => {
    const workspace = await makeWorkspace(sqliteConfig);
    expect(data(await listBackups({ environment: 'dev' }, workspace.ctx()))).toEqual({ backups: [], total: 0 });
    expect(await listBackups({ environment: 'qa' }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'ENVIRONMENT_UNKNOWN',
    });
    expect(await listBackups({ limit: 0 }, workspace.ctx())).toMatchObject({
      status: 'error',
      error_code: 'INVALID_OPTION',
    });
  });

  it('lists 10 000 entries without touching their files (timing printed, not asserted)', async () => {
    const workspace = await makeWorkspace(sqliteConfig);
    const start = Date.parse('2020-01-01T00:00:00.000Z');
    const entries = Array.from({ length: 10_000 }, (_, index) =>
      makeEntry({
        project: index % 10 === 0 ? 'web' : 'api',
        environment: index % 2 ? 'dev' : 'production',
        created_at: new Date(start + index * 60_000).toISOString(),
      }),
    );
    await writeCatalog(workspace, entries);
    const timed = async (json: boolean) => {
      const began = performance.now();
      const result = data(await listBackups({}, workspace.ctx(json ? { reporter: silentReporter() } : {})));
      return { ms: performance.now() - began, count: result.backups.length };
    };
    const machine = await timed(true);
    const people = await timed(false);
    console.log(
      `list-backups over a 10 000-entry catalog (9 000 listed): ${machine.ms.toFixed(0)} ms as JSON, ${people.ms.toFixed(0)} ms with the table`,
    );
    expect(machine.count).toBe(9_000);
    expect(people.count).toBe(9_000);
  });
});

describe('list-backups executor', () => {
  it('takes the environment from the Nx configuration, prints one line of JSON and writes --outputFile', async () => {
    const workspace = await makeWorkspace(sqliteConfig);
    const entry = makeEntry({ project: 'api', environment: 'dev' });
    await writeCatalog(workspace, [entry, makeEntry({ project: 'api', environment: 'production' })]);
    const context = {
      root: workspace.root,
      cwd: workspace.root,
      isVerbose: false,
      projectName: 'api',
      configurationName: 'dev',
      projectsConfigurations: { version: 2, projects: { api: { root: '.' } } },
    } as unknown as ExecutorContext;
    const written: string[] = [];
    const spy = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array) => (written.push(String(chunk)), true));
    try {
      expect(await listBackupsExecutor({ json: true, outputFile: 'out/list.json' }, context)).toEqual({
        success: true,
      });
    } finally {
      spy.mockRestore();
    }
    expect(written).toHaveLength(1);
    const printed = JSON.parse(written[0] ?? '') as { status: string; environment: string; result: ListResultData };
    expect(printed).toMatchObject({
      status: 'success',
      environment: 'dev',
      result: { total: 1, backups: [{ backup_id: entry.backup_id }] },
    });
    expect(JSON.parse(await readFile(path.join(workspace.root, 'out/list.json'), 'utf8'))).toEqual(printed);
  });
});
