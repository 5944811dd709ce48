import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { CreateNodesContext } from '@nx/devkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createNodes, createNodesV2, projectRootOf, readEnvironmentNames } from '../../src/plugin/create-nodes.ts';
import { stringMatching } from '../support/matchers.ts';

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
      options: {
        reason: 'pre-migration',
        label: 'pre-migration',
        yes: true,
        skipIfNotRequired: true,
        skipIfNothingPending: true,
      },
      configurations: { dev: { environment: 'dev' }, qa: { environment: 'qa' } },
    });
    expect(targets['restore']).toMatchObject({ executor: '@faber-db/nx:restore', cache: false, options: {} });
    expect(targets['restore']?.metadata?.description).toMatch(/Restore/);
  });

  it('takes target names from the plugin options and explains each target (description, help)', async () => {
    write('apps/api/project.json', '{ "name": "api" }');
    const file = writeConfig('apps/api', { dev: { connection_string_env: 'A' } });

    const [[, result] = []] = await createNodes[1](
      [file],
      { backupTargetName: 'db-backup', preMigrateBackupTargetName: 'db-safety' },
      context,
    );

    const targets = result?.projects?.['apps/api']?.targets ?? {};
    expect(Object.keys(targets)).toEqual([
      'db-backup',
      'verify-backup',
      'list-backups',
      'delete-backup',
      'pin-backup',
      'cleanup-backups',
      'restore',
      'db-safety',
    ]);
    expect(targets['db-safety']).toMatchObject({
      executor: '@faber-db/nx:backup',
      options: { skipIfNotRequired: true },
    });
    expect(targets['db-backup']?.metadata).toEqual({
      description: 'Take a verified, cataloged backup of the database of an environment',
      technologies: ['faber-db'],
      help: { command: 'npx nx run api:db-backup --help', example: { options: { label: 'pre-v2-migration' } } },
    });
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

  it('a config that is not JSON never fails the graph: its project keeps configuration-less targets, the problem is reported once with line and column', async () => {
    write('apps/api/project.json', '{}');
    write('apps/web/project.json', '{}');
    write(
      `apps/api/${CONFIG}`,
      '{\n  "schema_version": "1.0",\n  "environments": { "dev": { "connection_string_env": "A" } },\n}\n',
    );
    const good = writeConfig('apps/web', { dev: { connection_string_env: 'A' } });
    const printed: string[] = [];
    const spy = vi
      .spyOn(process.stderr, 'write')
      .mockImplementation((chunk: string | Uint8Array) => printed.push(String(chunk)) > 0);

    try {
      const results = [...(await infer([`apps/api/${CONFIG}`, good])), ...(await infer([`apps/api/${CONFIG}`]))];

      const api = results[0]?.[1].projects?.['apps/api']?.targets ?? {};
      expect(Object.keys(api)).toContain('backup');
      expect(api['backup']?.configurations).toEqual({});
      expect(results[1]?.[1].projects?.['apps/web']?.targets?.['backup']?.configurations).toEqual({
        dev: { environment: 'dev' },
      });
    } finally {
      spy.mockRestore();
    }
    // Reported once although the graph was built twice.
    const reports = printed.filter((line) => line.includes('config.json'));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toContain(`apps/api/${CONFIG}:3:62: not valid JSON: a trailing comma before "}"`);
    expect(reports[0]).toContain('CONFIG_INVALID');
  });

  it('a config without usable environments infers what it can and says what is wrong', () => {
    write('apps/api/project.json', '{}');
    write(`apps/api/${CONFIG}`, '{ "environments": [] }');
    write('apps/web/project.json', '{}');
    const badName = writeConfig('apps/web', {
      'eu/prod': { connection_string_env: 'A' },
      dev: { connection_string_env: 'B' },
    });

    expect(readEnvironmentNames(`apps/api/${CONFIG}`, root)).toEqual({
      environments: [],
      problem: stringMatching(/has no "environments" object/),
    });
    expect(readEnvironmentNames(badName, root)).toEqual({
      environments: ['dev'],
      problem: stringMatching(/invalid: "eu\/prod"/),
    });
  });

  it('finds the project root of a config path', () => {
    expect(projectRootOf(CONFIG)).toBe('.');
    expect(projectRootOf(`apps/api/${CONFIG}`)).toBe('apps/api');
    expect(projectRootOf(`apps\\api\\${CONFIG.replaceAll('/', '\\')}`)).toBe('apps/api');
  });
});
