import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackup } from '../../src/operations/backup.ts';
import { createPasswordUser, type PasswordUser } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { filesUnder, runOperationChild, type ChildOutcome } from './support.ts';
import { seedBulk, seedBulkMysql } from './seed.ts';
import { stringMatching } from '../support/matchers.ts';

/**
 * The password of a PostgreSQL and a MariaDB user (with @ : / % " \ # ; in it) during a backup
 * and a restore run as real child processes. Every process they start is watched through /proc:
 * its argv must never hold the password; its environment may (PGPASSWORD, for a password libpq's passfile
 * cannot hold) since only the same user can read it; a credentials file must be 0600
 * and gone afterwards. stdout, stderr, the JSON result, the catalog and the manifests must not
 * hold it in any form. And a tool that echoes its connection string has its message redacted.
 */

const execFileAsync = promisify(execFile);
const PROVIDERS = ['postgresql', 'mysql'] as const;
type Provider = (typeof PROVIDERS)[number];
const TOOLS: Record<Provider, { backup: RegExp; restore: RegExp }> = {
  postgresql: { backup: /pg_dump/, restore: /psql|pg_restore/ },
  mysql: { backup: /mariadb-dump|mysqldump/, restore: /\/(mariadb|mysql)$/ },
};
/** Environment variables through which a client tool may legitimately receive the password. */
const CREDENTIAL_VARIABLES = ['PGPASSWORD'];

interface SeenProcess {
  pid: number;
  argv: string[];
  environ: string[];
  /** Credential files named by PGPASSFILE or --defaults-extra-file, with their mode when seen. */
  secretFiles: Array<{ path: string; mode: number | undefined }>;
}

/**
 * Polls /proc for the descendants of `rootPid` until stopped, keeping what each one exposed. A pid
 * is looked at again on every pass: Debian's pg_dump is a Perl wrapper that execs the real one.
 * Synchronous reads keep a pass at about 10 ms, well under the life of a dump.
 */
function watchProcesses(rootPid: number): { stop(): Promise<SeenProcess[]> } {
  const seen = new Map<string, SeenProcess>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const pid of [rootPid, ...descendantsOfSync(rootPid)]) {
        const observed = observe(pid);
        if (observed) seen.set(`${pid} ${observed.argv.join(' ')}`, observed);
      }
      await sleep(4);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...seen.values()];
    },
  };
}

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function descendantsOfSync(rootPid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = readProc(`/proc/${name}/stat`);
    if (status) parents.set(Number(name), Number(status.slice(status.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const found: number[] = [];
  for (let queue = [rootPid]; queue.length > 0;) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of parents) {
      if (ppid === parent) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

function observe(pid: number): SeenProcess | undefined {
  const cmdline = readProc(`/proc/${pid}/cmdline`);
  if (!cmdline) return undefined;
  const argv = cmdline.split('\0').filter(Boolean);
  const environment = (readProc(`/proc/${pid}/environ`) ?? '').split('\0').filter(Boolean);
  const named = [
    ...environment
      .filter((variable) => variable.startsWith('PGPASSFILE='))
      .map((variable) => variable.slice('PGPASSFILE='.length)),
    ...argv
      .filter((arg) => arg.startsWith('--defaults-extra-file='))
      .map((arg) => arg.slice('--defaults-extra-file='.length)),
  ];
  const secretFiles = named.map((file) => ({ path: file, mode: modeOf(file) }));
  return { pid, argv, environ: environment, secretFiles };
}

function modeOf(file: string): number | undefined {
  try {
    return statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
}

/** The password, its URL-encoded form, and its random tail (which survives any escaping). */
function formsOf(password: string): string[] {
  return [password, encodeURIComponent(password), password.slice(-12)];
}

function expectNoSecret(text: string, password: string, where: string): void {
  for (const form of formsOf(password))
    expect(text.includes(form), `${where} contains the password (${JSON.stringify(form)})`).toBe(false);
}

interface Watched {
  outcome: ChildOutcome;
  processes: SeenProcess[];
}

async function runWatched(
  workspace: TestWorkspace,
  user: PasswordUser,
  operation: 'backup' | 'restore',
  options: Record<string, unknown>,
): Promise<Watched> {
  const child = runOperationChild(
    { operation, workspaceRoot: workspace.root, projectName: 'api', options: { environment: 'dev', ...options } },
    { PATH: process.env.PATH, HOME: process.env.HOME, DEV_DATABASE_URL: user.url },
  );
  const watcher = watchProcesses(child.pid);
  const outcome = await child.done;
  return { outcome, processes: await watcher.stop() };
}

async function expectNothingLeaks(
  watched: Watched,
  workspace: TestWorkspace,
  user: PasswordUser,
  tool: RegExp,
): Promise<void> {
  const { outcome, processes } = watched;
  expect(outcome.result, outcome.stdout + outcome.stderr).toMatchObject({ status: 'success' });
  const tools = processes.filter((process) => process.argv.slice(0, 2).some((arg) => tool.test(arg)));
  expect(
    tools.length,
    `a ${tool} process was seen among ${processes.map((process) => process.argv.slice(0, 2).join(' ')).join(', ')}`,
  ).toBeGreaterThan(0);
  for (const process of processes) {
    expectNoSecret(process.argv.join(' '), user.password, `argv of ${process.argv[0]}`);
    const exposing = process.environ.filter((variable) =>
      formsOf(user.password).some((form) => variable.includes(form)),
    );
    // The operation itself reads the URL from its variable; the client tools it starts do not inherit it.
    const allowed = tools.includes(process) ? CREDENTIAL_VARIABLES : [...CREDENTIAL_VARIABLES, 'DEV_DATABASE_URL'];
    for (const variable of exposing)
      expect(allowed, `environment of ${process.argv[0]}`).toContain(variable.split('=')[0]);
  }
  const secretFiles = processes.flatMap((process) => process.secretFiles);
  expect(
    secretFiles.some((file) => file.mode !== undefined),
    'a credentials file was seen while in use',
  ).toBe(true);
  for (const file of secretFiles) {
    if (file.mode !== undefined) expect(file.mode.toString(8), file.path).toBe('600');
    await expect(stat(file.path), `${file.path} is gone`).rejects.toMatchObject({ code: 'ENOENT' });
  }
  expectNoSecret(outcome.stdout, user.password, 'stdout');
  expectNoSecret(outcome.stderr, user.password, 'stderr');
  expectNoSecret(JSON.stringify(outcome.result), user.password, 'the JSON result');
  for (const name of await filesUnder(workspace.backupRoot)) {
    const file = path.join(workspace.backupRoot, name);
    if (!(await stat(file)).isFile()) continue;
    expect(name, 'only backups, manifests, id claims and the catalog remain').toMatch(
      /\.(sql|sql\.zst|manifest\.json)$|^backups\.json$|^\.reservations\//,
    );
    if (name.endsWith('.json')) expectNoSecret(await readFile(file, 'utf8'), user.password, name);
  }
}

const users: PasswordUser[] = [];
const roots: string[] = [];
afterAll(async () => {
  for (const user of users) await user.drop();
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

describe.each(PROVIDERS)('%s: the password never leaks', (provider) => {
  let user: PasswordUser;
  let workspace: TestWorkspace;
  let backupId: string;

  beforeAll(async () => {
    user = await createPasswordUser(provider);
    users.push(user);
    await seedAwkwardData(provider, user.url);
    // Enough rows that each dump and restore lives for a few watcher passes.
    await (provider === 'postgresql' ? seedBulk(user.url, 4) : seedBulkMysql(user.url, 4));
    workspace = await makeWorkspace({ database: { provider } }, { DEV_DATABASE_URL: user.url });
    roots.push(workspace.root);
  });

  it('backup: not in any argv, stdout, stderr, result, catalog or manifest; credential files 0600 and removed', async () => {
    const watched = await runWatched(workspace, user, 'backup', {});
    await expectNothingLeaks(watched, workspace, user, TOOLS[provider].backup);
    backupId = (watched.outcome.result as { result: { backup_id: string } }).result.backup_id;
  });

  it('restore (with its safety backup): the same', async () => {
    const watched = await runWatched(workspace, user, 'restore', { from: backupId });
    await expectNothingLeaks(watched, workspace, user, TOOLS[provider].restore);
    expect(watched.outcome.result).toMatchObject({ result: { safety_backup_id: stringMatching(/pre-restore/) } });
  });
});

describe('messages that echo the connection string are redacted', () => {
  let postgresUser: PasswordUser;
  let mariadbUser: PasswordUser;
  beforeAll(async () => {
    [postgresUser, mariadbUser] = await Promise.all([createPasswordUser('postgresql'), createPasswordUser('mysql')]);
    users.push(postgresUser, mariadbUser);
  });

  /**
   * Shell commands printing the raw password as a tool can recover it: from the libpq passfile
   * (PGPASSFILE) or from the MySQL option file given as the first argument. The tools do not
   * inherit the connection URL, so this is all they could ever echo.
   */
  const node = JSON.stringify(process.execPath);
  const passwordFromPassfile = `${node} -e 'process.stdout.write(require("fs").readFileSync(process.env.PGPASSFILE, "utf8").trim().slice(8).replace(/\\\\(.)/g, "$1"))'`;
  const passwordFromOptionFile = `OPTION_FILE="$1" ${node} -e 'const text = require("fs").readFileSync(process.env.OPTION_FILE.replace("--defaults-extra-file=", ""), "utf8"); process.stdout.write(JSON.parse(/^password=(".*")$/m.exec(text)[1]))'`;

  /** A directory with `name`, a client tool that prints `echo` on stderr and fails (but answers --version like the real one). */
  async function echoingTool(name: string, real: string, echo: string): Promise<string> {
    const realPath = (await execFileAsync('sh', ['-c', `command -v ${real}`])).stdout.trim();
    const bin = await mkdtemp(path.join(tmpdir(), 'faber-echo-bin-'));
    roots.push(bin);
    await writeFile(
      path.join(bin, name),
      `#!/bin/sh\nif [ "$1" = "--version" ]; then exec ${JSON.stringify(realPath)} --version; fi\n${echo}\nexit 1\n`,
    );
    await chmod(path.join(bin, name), 0o755);
    return bin;
  }

  it('pg_dump printing the connection URL and the password', async () => {
    const bin = await echoingTool(
      'pg_dump',
      'pg_dump',
      [
        `printf '%s\\n' "pg_dump: error: connection to postgres://$PGUSER:$(${passwordFromPassfile})@$PGHOST/$PGDATABASE failed" >&2`,
        `printf '%s\\n' "pg_dump: detail: conninfo host=127.0.0.1 password=$(${passwordFromPassfile})" >&2`,
      ].join('\n'),
    );
    const workspace = await makeWorkspace(
      { database: { provider: 'postgresql' } },
      { DEV_DATABASE_URL: postgresUser.url },
    );
    roots.push(workspace.root);
    const result = await createBackup(
      { environment: 'dev' },
      workspace.ctx({ env: { PATH: `${bin}:${process.env.PATH}`, DEV_DATABASE_URL: postgresUser.url } }),
    );
    expect(result).toMatchObject({ status: 'error', error_code: 'BACKUP_FAILED' });
    const shown = `${JSON.stringify(result)}\n${workspace.output.join('\n')}`;
    expect(shown).toContain(`${postgresUser.user}:***@`);
    expect(shown).toContain('password=***');
    expectNoSecret(shown, postgresUser.password, 'the failure');
  });

  it('mariadb-dump printing the connection URL and the password', async () => {
    const bin = await echoingTool(
      'mariadb-dump',
      'mariadb-dump',
      [
        `printf '%s\\n' "mariadb-dump: Got error: connecting with mysql://${mariadbUser.user}:$(${passwordFromOptionFile})@127.0.0.1/db" >&2`,
        `printf '%s\\n' "mariadb-dump: Got error: 1045: Access denied, password '$(${passwordFromOptionFile})'" >&2`,
      ].join('\n'),
    );
    const workspace = await makeWorkspace({ database: { provider: 'mysql' } }, { DEV_DATABASE_URL: mariadbUser.url });
    roots.push(workspace.root);
    const result = await createBackup(
      { environment: 'dev' },
      workspace.ctx({ env: { PATH: `${bin}:${process.env.PATH}`, DEV_DATABASE_URL: mariadbUser.url } }),
    );
    expect(result).toMatchObject({ status: 'error', error_code: 'BACKUP_FAILED' });
    const shown = `${JSON.stringify(result)}\n${workspace.output.join('\n')}`;
    expect(shown).toContain(`${mariadbUser.user}:***@`);
    expect(shown, shown).toContain("password '***'");
    expectNoSecret(shown, mariadbUser.password, 'the failure');
  });

  it('the MariaDB server refusing a wrong password, and a URL that does not parse', async () => {
    const wrong = new URL(mariadbUser.url);
    const wrongPassword = `${mariadbUser.password.slice(0, -12)}0123456789ab`;
    wrong.password = encodeURIComponent(wrongPassword);
    const cases: Array<[string, string]> = [
      [wrong.toString(), 'AUTHENTICATION_FAILED'],
      [
        `mysql://${mariadbUser.user}:${encodeURIComponent(wrongPassword)}@127.0.0.1:99999999/db`,
        'CONNECTION_URL_INVALID',
      ],
    ];
    for (const [url, code] of cases) {
      const workspace = await makeWorkspace({ database: { provider: 'mysql' } }, { DEV_DATABASE_URL: url });
      roots.push(workspace.root);
      const result = await createBackup({ environment: 'dev' }, workspace.ctx());
      expect(result).toMatchObject({ status: 'error', error_code: code });
      expectNoSecret(`${JSON.stringify(result)}\n${workspace.output.join('\n')}`, wrongPassword, code);
    }
  });
});
