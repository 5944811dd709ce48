/**
 * What the inferred-targets plugin adds to every Nx command: `nx show projects` in a workspace of
 * 50 projects that each have a config, with the plugin in nx.json and without it (the baseline).
 * Part of `npm run bench` (group "graph"); alone: `node bench/graph-time.ts --reps=9`.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BenchCase } from './cases.ts';
import { execa } from 'execa';
import { median } from './measure.ts';
import { createNodesForConfigFile } from '../src/plugin/create-nodes.ts';
import { nxEnv } from './workspace.ts';

const PROJECTS = 50;
const CONFIG = '.fractary/plugins/faber-db/config.json';

function writeJson(file: string, value: unknown): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A plugin that answers with the very targets ours infers, read from a file made beforehand: what
 * Nx itself spends on a plugin (a worker process per plugin) and on merging its targets. Ours minus
 * this one is the work our code adds at graph time.
 */
const REPLAY_PLUGIN = `const { readFileSync } = require('node:fs');
const results = JSON.parse(readFileSync(__dirname + '/results.json', 'utf-8'));
exports.createNodesV2 = ['**/${CONFIG}', (files) => files.map((file) => [file, results[file] ?? {}])];
`;

type Variant = 'none' | 'replay' | 'plugin';
const PLUGIN_ENTRIES: Record<Variant, string[]> = {
  none: [],
  replay: ['replay-plugin'],
  plugin: ['@faber-db/nx/plugin'],
};

/** 50 projects, each with a project.json and a config of three environments. */
function createGraphWorkspace(repo: string, variant: Variant): string {
  const root = mkdtempSync(path.join(tmpdir(), `faber-graph-${variant}-`));
  writeJson(path.join(root, 'nx.json'), {
    analytics: false,
    useDaemonProcess: false,
    plugins: PLUGIN_ENTRIES[variant],
  });

  writeJson(path.join(root, 'package.json'), { name: 'faber-graph-bench', private: true });
  const link = path.join(root, 'node_modules', '@faber-db', 'nx');
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(repo, link, 'dir');
  symlinkSync(path.join(repo, 'node_modules', 'nx'), path.join(root, 'node_modules', 'nx'), 'dir');
  const environments = Object.fromEntries(
    ['dev', 'staging', 'production'].map((name) => [
      name,
      { connection_string_env: `${name.toUpperCase()}_DATABASE_URL` },
    ]),
  );
  const configFiles: string[] = [];
  for (let i = 1; i <= PROJECTS; i++) {
    const projectRoot = path.join('apps', `app-${i}`);
    writeJson(path.join(root, projectRoot, 'project.json'), { name: `app-${i}`, projectType: 'application' });
    writeJson(path.join(root, projectRoot, CONFIG), {
      schema_version: '1.0',
      database: { provider: 'postgresql' },
      environments,
    });
    configFiles.push(path.posix.join('apps', `app-${i}`, CONFIG));
  }
  if (variant === 'replay') writeReplayPlugin(root, configFiles);
  return root;
}

function writeReplayPlugin(root: string, configFiles: string[]): void {
  const directory = path.join(root, 'node_modules', 'replay-plugin');
  const results = Object.fromEntries(
    configFiles.map((file) => [
      file,
      createNodesForConfigFile(file, {}, { workspaceRoot: root, nxJsonConfiguration: {} }),
    ]),
  );
  writeJson(path.join(directory, 'package.json'), { name: 'replay-plugin', version: '0.0.0', main: 'index.js' });
  writeJson(path.join(directory, 'results.json'), results);
  writeFileSync(path.join(directory, 'index.js'), REPLAY_PLUGIN);
}

export interface GraphTimeBench {
  cases: BenchCase[];
  remove(): void;
}

export function graphTimeCases(repo: string): GraphTimeBench {
  const nx = path.join(repo, 'node_modules', '.bin', 'nx');
  const roots = {
    none: createGraphWorkspace(repo, 'none'),
    replay: createGraphWorkspace(repo, 'replay'),
    plugin: createGraphWorkspace(repo, 'plugin'),
  };
  const showProjects =
    (root: string): BenchCase['run'] =>
    async () => {
      // No graph cache from the previous round: every run computes the project graph, as after a change.
      rmSync(path.join(root, '.nx'), { recursive: true, force: true });
      const measured = await timed(nx, ['show', 'projects'], root);
      const listed = measured.stdout.split('\n').filter((line) => line.startsWith('app-')).length;
      if (listed !== PROJECTS)
        throw new Error(`nx show projects listed ${listed} projects, expected ${PROJECTS}:\n${measured.stdout}`);
      return { wallMs: measured.wallMs, sizeBytes: null, peakRssBytes: null, cpuSeconds: measured.cpuMs / 1000 };
    };
  return {
    cases: [
      { id: 'graph.none', label: `nx show projects, ${PROJECTS} projects, no plugin`, run: showProjects(roots.none) },
      {
        id: 'graph.replay',
        label: `nx show projects, ${PROJECTS} projects, a plugin replaying our targets`,
        baseline: 'graph.none',
        run: showProjects(roots.replay),
      },
      {
        id: 'graph.plugin',
        label: `nx show projects, ${PROJECTS} projects, with @faber-db/nx/plugin`,
        baseline: 'graph.replay',
        run: showProjects(roots.plugin),
      },
    ],
    remove: () => Object.values(roots).forEach((root) => rmSync(root, { recursive: true, force: true })),
  };
}

/**
 * Wall time, and the CPU time of nx and every process it waited for (GNU time's %U + %S): on a
 * shared machine the CPU time is the steadier measure of work added.
 */
async function timed(
  file: string,
  args: readonly string[],
  cwd: string,
): Promise<{ wallMs: number; cpuMs: number; stdout: string }> {
  const report = path.join(tmpdir(), `faber-graph-time-${process.pid}`);
  const started = performance.now();
  const result = await execa('/usr/bin/time', ['-f', '%U %S', '-o', report, file, ...args], {
    cwd,
    env: nxEnv(process.env, {}),
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  const wallMs = performance.now() - started;
  if (result.exitCode !== 0)
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${String(result.stderr)}`);
  const [user = 0, system = 0] = readFileSync(report, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
  rmSync(report, { force: true });
  return { wallMs, cpuMs: (user + system) * 1000, stdout: String(result.stdout) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reps: { type: 'string', default: '7' } } });
  const reps = Number(values.reps);
  const bench = graphTimeCases(path.resolve(path.dirname(process.argv[1] ?? 'bench/graph-time.ts'), '..'));
  const wall = new Map<string, number[]>(bench.cases.map((benchCase) => [benchCase.id, []]));
  const cpu = new Map<string, number[]>(bench.cases.map((benchCase) => [benchCase.id, []]));
  try {
    for (let round = 0; round < reps; round++) {
      // Alternate the order so neither case always runs on a warmer machine.
      const order = round % 2 === 0 ? bench.cases : [...bench.cases].reverse();
      for (const benchCase of order) {
        const sample = await benchCase.run();
        wall.get(benchCase.id)?.push(sample.wallMs);
        cpu.get(benchCase.id)?.push((sample.cpuSeconds ?? Number.NaN) * 1000);
      }
    }
  } finally {
    bench.remove();
  }
  for (const benchCase of bench.cases) {
    process.stdout.write(
      `${benchCase.label} (${reps} runs):\n  wall ${spread(wall.get(benchCase.id))}\n  cpu  ${spread(cpu.get(benchCase.id))}\n`,
    );
  }
  const added = (samples: Map<string, number[]>, baseline: string) =>
    (samples.get('graph.plugin') ?? []).map((value, index) => value - (samples.get(baseline)?.[index] ?? 0));
  process.stdout.write(
    `added by the plugin, per round (min - median - max):\n  wall ${spread(added(wall, 'graph.none'))}\n  cpu  ${spread(added(cpu, 'graph.none'))}\n`,
  );
  process.stdout.write(
    `of which its own work (over the plugin replaying its targets):\n  wall ${spread(added(wall, 'graph.replay'))}\n  cpu  ${spread(added(cpu, 'graph.replay'))}\n`,
  );
}

function spread(values: readonly number[] | undefined): string {
  const sorted = [...(values ?? [])].sort((a, b) => a - b);
  return `${ms(sorted[0])} - ${ms(median(sorted))} - ${ms(sorted.at(-1))}`;
}

if (process.argv[1] && path.basename(process.argv[1]) === 'graph-time.ts') {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

function ms(value: number | undefined): string {
  return `${Math.round(value ?? Number.NaN)} ms`;
}
