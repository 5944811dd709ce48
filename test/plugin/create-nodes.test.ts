import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { AggregateCreateNodesError, type CreateNodesContext } from '@nx/devkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNodes, createNodesV2, projectRootOf } from '../../src/plugin/create-nodes.ts';

const CONFIG = '.fractary/plugins/faber-db/config.json';

describe('createNodes', () => {
  let root: string;
  let context: CreateNodesContext;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'faber-nodes-'));
    context = { workspaceRoot: root, nxJsonConfiguration: {} };
  });

  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function write(path: string, content: string): void {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }

  function writeConfig(projectRoot: string, environments: Record<string, unknown>): string {
    const file = projectRoot === '.' ? CONFIG : `${projectRoot}/${CONFIG}`;
    write(file, JSON.stringify({ schema_version: '1.0', database: { provider: 'sqlite' }, environments }));
    return file;
  }

  const infer = async (files: string[]) => createNodes[1](files, {}, context);

  it('matches config files anywhere, and exports the same tuple under both names', () => {
    expect(createNodes[0]).toBe('**/.fractary/plugins/faber-db/config.json');
    expect(createNodesV2).toBe(createNodes);
  });

  it('infers the backup targets of a project from its config environments', async () => {
    write('apps/api/project.json', '{}');
    const file = writeConfig('apps/api', { dev: { connection_string_env: 'A' }, qa: { connection_string_env: 'B' } });

    const results = await infer([file]);

    expect(results).toHaveLength(1);
    const [source, result] = results[0] ?? [];
    expect(source).toBe(file);
    const targets = result?.projects?.['apps/api']?.targets ?? {};
    expect(Object.keys(targets)).toEqual([
      'backup',
      'verify-backup',
      'list-backups',
      'delete-backup',
      'pin-backup',
      'cleanup-backups',
      'restore',
      'pre-migrate-backup',
    ]);
    expect(targets['pre-migrate-backup']).toMatchObject({
      executor: '@faber-db/nx:backup',
      cache: false,
      options: { reason: 'pre-migration', label: 'pre-migration', yes: true, skipIfNotRequired: true, skipIfNothingPending: true },
      configurations: { dev: { environment: 'dev' }, qa: { environment: 'qa' } },
    });
    expect(targets['restore']).toMatchObject({ executor: '@faber-db/nx:restore', cache: false, options: {} });
    expect(targets['restore']?.metadata?.description).toMatch(/Restore/);
  });

  it('treats a directory with only a package.json as a project', async () => {
    write('libs/db/package.json', '{ "name": "db" }');
    const file = writeConfig('libs/db', { production: { connection_string_env: 'P' } });

    const [[, result] = []] = await infer([file]);

    expect(Object.keys(result?.projects ?? {})).toEqual(['libs/db']);
  });

  it('infers nothing for the workspace-level config or a directory that is no project', async () => {
    write('package.json', '{}');
    write('project.json', '{}');
    const workspaceConfig = writeConfig('.', { dev: { connection_string_env: 'A' } });
    const stray = writeConfig('docs/examples', { dev: { connection_string_env: 'A' } });

    const results = await infer([workspaceConfig, stray]);

    expect(results.flatMap(([, result]) => Object.keys(result.projects ?? {}))).toEqual([]);
  });

  it('reports a config that is not JSON, naming the file, and still infers the others', async () => {
    write('apps/api/project.json', '{}');
    write('apps/web/project.json', '{}');
    write(`apps/api/${CONFIG}`, '{ "environments": { "dev": ');
    const good = writeConfig('apps/web', { dev: { connection_string_env: 'A' } });

    const error = await infer([`apps/api/${CONFIG}`, good]).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );

    expect(error).toBeInstanceOf(AggregateCreateNodesError);
    const aggregate = error as AggregateCreateNodesError;
    expect(aggregate.errors).toHaveLength(1);
    const [file, cause] = aggregate.errors[0] ?? [];
    expect(file).toBe(`apps/api/${CONFIG}`);
    expect(String(cause)).toMatch(/apps\/api\/\.fractary\/plugins\/faber-db\/config\.json is not valid JSON/);
    expect(aggregate.partialResults.map(([source]) => source)).toEqual([good]);
  });

  it('reports a config without usable environments', async () => {
    write('apps/api/project.json', '{}');
    write(`apps/api/${CONFIG}`, '{ "environments": [] }');
    write('apps/web/project.json', '{}');
    const badName = writeConfig('apps/web', { 'eu/prod': { connection_string_env: 'A' } });

    const error = (await infer([`apps/api/${CONFIG}`, badName]).catch((thrown: unknown) => thrown)) as AggregateCreateNodesError;

    expect(error.errors.map(([, cause]) => String(cause))).toEqual([
      expect.stringMatching(/has no "environments" object/),
      expect.stringMatching(/invalid: "eu\/prod"/),
    ]);
  });

  it('finds the project root of a config path', () => {
    expect(projectRootOf(CONFIG)).toBe('.');
    expect(projectRootOf(`apps/api/${CONFIG}`)).toBe('apps/api');
    expect(projectRootOf(`apps\\api\\${CONFIG.replaceAll('/', '\\')}`)).toBe('apps/api');
  });
});
