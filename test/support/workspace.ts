import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FaberConfigInput } from '../../src/config/schema.ts';
import { CONFIG_RELATIVE_PATH } from '../../src/config/load.ts';
import type { OperationContext } from '../../src/operations/context.ts';
import type { Reporter } from '../../src/output/reporter.ts';
import { Catalog } from '../../src/catalog/catalog.ts';

export interface TestWorkspace {
  root: string;
  backupRoot: string;
  catalog: Catalog;
  /** Everything the reporter printed, one string per call. */
  output: string[];
  ctx(overrides?: Partial<OperationContext>): OperationContext;
}

const madeWorkspaces: string[] = [];

/** Removes the temp workspaces this test file made (run after each file by test/support/cleanup.ts). */
export async function removeWorkspaces(): Promise<void> {
  for (const root of madeWorkspaces.splice(0)) await rm(root, { recursive: true, force: true });
}

/** A reporter that records what people would see, so tests can assert on it (and on secrets not in it). */
export function capturingReporter(output: string[]): Reporter {
  const push =
    (kind: string) =>
    (...args: unknown[]) => {
      output.push(`${kind} ${JSON.stringify(args)}`);
    };
  return {
    start: push('start'),
    step: push('step'),
    info: push('info'),
    warn: push('warn'),
    progress: push('progress'),
    complete: push('complete'),
    fail: push('fail'),
  };
}

/**
 * A temp workspace with a config file; `env` maps connection variables to URLs. Environments
 * default to dev and production reading DEV_DATABASE_URL / PROD_DATABASE_URL.
 */
export async function makeWorkspace(
  config: Partial<FaberConfigInput> & Pick<FaberConfigInput, 'database'>,
  env: Record<string, string> = {},
): Promise<TestWorkspace> {
  const root = await mkdtemp(path.join(tmpdir(), 'faber-ws-'));
  madeWorkspaces.push(root);
  const full: FaberConfigInput = {
    schema_version: '1.0',
    environments: {
      dev: { connection_string_env: 'DEV_DATABASE_URL' },
      production: { connection_string_env: 'PROD_DATABASE_URL', backup_before_migrate: true, require_approval: true },
    },
    ...config,
  };
  await mkdir(path.join(root, path.dirname(CONFIG_RELATIVE_PATH)), { recursive: true });
  await writeFile(path.join(root, CONFIG_RELATIVE_PATH), JSON.stringify(full, null, 2));
  const backupRoot = path.join(root, full.backup?.directory ?? '.fractary/plugins/faber-db/backups');
  const output: string[] = [];
  return {
    root,
    backupRoot,
    catalog: new Catalog({ backupRoot, workspaceRoot: root }),
    output,
    ctx: (overrides = {}) => ({
      workspaceRoot: root,
      projectName: 'api',
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      reporter: capturingReporter(output),
      interactive: false,
      ...overrides,
    }),
  };
}
