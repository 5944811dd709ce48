import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nxEnvironment } from '../e2e/support/workspace.ts';
import { arrayContaining, stringMatching } from '../support/matchers.ts';

/**
 * The plugin as real Nx loads it: a hand-written workspace whose nx.json points at the plugin
 * source (Nx strips the types), so the glob, the export names and the way Nx merges inferred
 * targets and passes configurations to dependencies are Nx's own behaviour, not our assumptions.
 */

const REPO = resolve(__dirname, '../..');
const PLUGIN_SOURCE = join(REPO, 'src/plugin/create-nodes.ts');
const NX_BIN = join(REPO, 'node_modules/nx/dist/bin/nx.js');
const CONFIG = '.fractary/plugins/faber-db/config.json';

/** The targets of `nx show project --json`. */
function targetsOf(showProjectJson: string): Record<string, unknown> {
  return (JSON.parse(showProjectJson) as { targets?: Record<string, unknown> }).targets ?? {};
}

describe('the plugin in a real Nx workspace', () => {
  let root: string;

  function write(path: string, value: unknown): void {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }

  function nx(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [NX_BIN, ...args], {
      cwd: root,
      env: nxEnvironment({ NODE_OPTIONS: '--disable-warning=MODULE_TYPELESS_PACKAGE_JSON' }),
      encoding: 'utf-8',
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'faber-nx-'));
    mkdirSync(join(root, 'node_modules'));
    symlinkSync(join(REPO, 'node_modules/nx'), join(root, 'node_modules/nx'));
    write('package.json', { name: 'ws', private: true });
    write('nx.json', { analytics: false, plugins: [PLUGIN_SOURCE] });
    write('apps/api/project.json', {
      name: 'api',
      targets: {
        migrate: { command: 'echo migrate', dependsOn: ['pre-migrate-backup'], configurations: { production: {} } },
      },
    });
    write(`apps/api/${CONFIG}`, {
      schema_version: '1.0',
      database: { provider: 'sqlite' },
      environments: {
        dev: { connection_string_env: 'DEV_DATABASE_URL' },
        production: { connection_string_env: 'PROD_DATABASE_URL' },
      },
    });
    write('libs/web/project.json', { name: 'web' });
    write(CONFIG, {
      schema_version: '1.0',
      database: { provider: 'sqlite' },
      environments: { dev: { connection_string_env: 'X' } },
    });
    spawnSync('git', ['init', '-q'], { cwd: root });
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('infers the targets of a project with its own config, and none from the workspace config', () => {
    const api = nx('show', 'project', 'api', '--json');
    const web = nx('show', 'project', 'web', '--json');

    expect(api.stderr).toBe('');
    const targets = targetsOf(api.stdout);
    expect(targets['restore']).toMatchObject({
      executor: '@faber-db/nx:restore',
      cache: false,
      configurations: { dev: { environment: 'dev' }, production: { environment: 'production' } },
    });
    expect(Object.keys(targetsOf(web.stdout))).toEqual([]);
  });

  it('runs the pre-migrate backup of the configuration typed for migrate', () => {
    const { stdout } = nx('run', 'api:migrate:production', '--graph=stdout');

    expect((JSON.parse(stdout) as { tasks: { dependencies: unknown } }).tasks.dependencies).toEqual({
      'api:migrate:production': [{ id: 'api:pre-migrate-backup:production' }],
      'api:pre-migrate-backup:production': [],
    });
  });

  it('names the targets as the plugin options in nx.json say, and explains them in nx show project', () => {
    write('nx.json', {
      analytics: false,
      plugins: [{ plugin: PLUGIN_SOURCE, options: { backupTargetName: 'db-backup' } }],
    });

    const targets = targetsOf(nx('show', 'project', 'api', '--json').stdout);
    write('nx.json', { analytics: false, plugins: [PLUGIN_SOURCE] });

    expect(targets['backup']).toBeUndefined();
    expect(targets['db-backup']).toMatchObject({
      executor: '@faber-db/nx:backup',
      metadata: {
        description: stringMatching(/verified, cataloged backup/),
        help: { command: 'npx nx run api:db-backup --help' },
      },
    });
  });

  it('survives a config that is not JSON: every command works, the project keeps its targets, the problem is reported once with line and column', () => {
    write(`apps/api/${CONFIG}`, '{\n  "schema_version": "1.0",\n  "environments": { "dev": {} },\n}\n');

    const projects = nx('show', 'projects', '--json');
    const api = nx('show', 'project', 'api', '--json');

    expect(projects.status).toBe(0);
    expect(JSON.parse(projects.stdout)).toEqual(arrayContaining(['api', 'web']));
    const reports = projects.stderr.split('\n').filter((line) => line.includes('config.json'));
    expect(reports).toEqual([`[@faber-db/nx] apps/api/${CONFIG}:3:32: not valid JSON: a trailing comma before "}".`]);
    expect(api.status).toBe(0);
    expect(targetsOf(api.stdout)['backup']).toMatchObject({ executor: '@faber-db/nx:backup', configurations: {} });
  });
});
