/**
 * `npm run bench`: @faber-db/nx against the databases' own tools on this machine.
 *
 *   npm run bench                       default size (1 M rows, ~350 MB database), 3 rounds
 *   npm run bench -- --rows=3000000     the 1 GB reference database
 *   npm run bench -- --reps=5 --fresh   more rounds; rebuild the cached datasets
 *   npm run bench -- --skip=mysql,nx    leave groups out (small, restore, directory, encryption, s3, mysql, sqlite, catalog, nx, graph, curve, stages)
 *
 * Cases run alternating (round-robin, the order rotated every round) and the table shows
 * medians. Results: bench/results/bench-<time>.json and latest.{json,md}.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { execa } from 'execa';
import {
  apiBackupCase,
  apiRestoreCase,
  apiVerifyCase,
  catalogCases,
  mysqlRawCase,
  nxBackupCase,
  nxNoopCase,
  pgCases,
  rawDirectoryCase,
  rawDumpPath,
  rawRestoreCase,
  sqliteCopyCase,
  sqliteRawCase,
  type BenchContext,
  type BenchGroup,
  type Sample,
} from './cases.ts';
import { writeLargeCatalog } from './catalog-fixture.ts';
import { ensureMysqlDataset, ensurePgDataset, ensureSqliteDataset, pgDatabaseSize } from './dataset.ts';
import { canMeasureRss, measureCommand } from './measure.ts';
import {
  checkTargets,
  curveTable,
  markdownTable,
  phasesTable,
  summarize,
  targetLines,
  terminalTable,
} from './report.ts';
import { checkServices, mysqlUrl, pgArgs, pgUrl, psql, servicesFromEnv, type Services } from './services.ts';
import { graphTimeCases, type GraphTimeBench } from './graph-time.ts';
import { startS3Server, type TestS3Server } from '../test/support/s3-server.ts';
import { createBenchWorkspace, nxEnv, type BenchProject, type BenchWorkspace } from './workspace.ts';
import { measureStages, stagesTable, type StageCosts } from './stages.ts';
import { measureCurve, type CurvePoint } from './zstd-curve.ts';

const GROUPS = [
  'small',
  'restore',
  'directory',
  'encryption',
  's3',
  'mysql',
  'sqlite',
  'catalog',
  'nx',
  'graph',
  'curve',
  'stages',
] as const;
type Skippable = (typeof GROUPS)[number];

interface BenchOptions {
  rows: number;
  smallRows: number;
  otherRows: number;
  reps: number;
  catalogEntries: number;
  fresh: boolean;
  keep: boolean;
  skip: Set<Skippable>;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      rows: { type: 'string', default: '1000000' },
      'small-rows': { type: 'string' },
      'other-rows': { type: 'string' },
      reps: { type: 'string', default: '3' },
      'catalog-entries': { type: 'string', default: '10000' },
      fresh: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      skip: { type: 'string', default: '' },
    },
  });
  const positive = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`--${name} must be a positive whole number, got ${text}`);
    return value;
  };
  const rows = positive('rows', values.rows);
  const skip = new Set(values.skip.split(',').filter(Boolean) as Skippable[]);
  for (const name of skip)
    if (!GROUPS.includes(name)) throw new Error(`--skip: unknown group ${name} (known: ${GROUPS.join(', ')})`);
  return {
    rows,
    smallRows: positive('small-rows', values['small-rows'] ?? String(Math.max(1, Math.round(rows / 4)))),
    otherRows: positive('other-rows', values['other-rows'] ?? String(Math.max(1, Math.round(rows / 4)))),
    reps: positive('reps', values.reps),
    catalogEntries: positive('catalog-entries', values['catalog-entries']),
    fresh: values.fresh,
    keep: values.keep,
    skip,
  };
}

const log = (line: string) => process.stdout.write(`${line}\n`);
const TINY_DATABASE = 'faber_bench_tiny';
/** The reference: 3 M rows, about 1 GB on disk. */
const REFERENCE_ROWS = 3_000_000;
const RESTORE_TARGET = 'faber_bench_restore_target';
const CATALOG_DIRECTORY = '.fractary/plugins/faber-db/catalog-bench';

async function ensureTinyDatabase(services: Services): Promise<void> {
  const exists = await psql(services, 'postgres', `SELECT 1 FROM pg_database WHERE datname = '${TINY_DATABASE}'`);
  if (exists.trim() === '1') return;
  await psql(services, 'postgres', `CREATE DATABASE ${TINY_DATABASE}`);
  await psql(
    services,
    TINY_DATABASE,
    `CREATE TABLE notes (id int PRIMARY KEY, body text);
     INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 100) g;
     CREATE TABLE _prisma_migrations (id text PRIMARY KEY, checksum text NOT NULL, finished_at timestamptz, migration_name text NOT NULL,
       logs text, rolled_back_at timestamptz, started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);
     INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES ('m1', 'bench', now(), '20250101000000_init');`,
  );
}

interface Prepared {
  pgDatabase: string;
  pgSizeBytes: number;
  smallDatabase: string | null;
  mysqlDatabase: string | null;
  sqliteFile: string | null;
}

async function prepareDatasets(
  services: Services,
  options: BenchOptions,
  mysqlUp: boolean,
  cacheDir: string,
): Promise<Prepared> {
  const pgDatabase = await ensurePgDataset(services, options.rows, options.fresh, log);
  const smallDatabase = options.skip.has('small')
    ? null
    : await ensurePgDataset(services, options.smallRows, options.fresh, log);
  if (!options.skip.has('nx')) await ensureTinyDatabase(services);
  const mysqlDatabase =
    mysqlUp && !options.skip.has('mysql')
      ? await ensureMysqlDataset(services, options.otherRows, options.fresh, log)
      : null;
  const sqliteFile = options.skip.has('sqlite')
    ? null
    : ensureSqliteDataset(cacheDir, options.otherRows, options.fresh, log);
  return {
    pgDatabase,
    pgSizeBytes: await pgDatabaseSize(services, pgDatabase),
    smallDatabase,
    mysqlDatabase,
    sqliteFile,
  };
}

/** The variable the bench's age identity is passed in (a key made for this run only). */
const AGE_IDENTITY_ENV = 'BENCH_AGE_IDENTITY';

/** The database of the main PostgreSQL group, backed up to a bucket on the local S3 server. */
function s3Project(server: TestS3Server): BenchProject {
  return {
    name: 'pg-s3-app',
    provider: 'postgresql',
    environments: { bench: 'BENCH_PG_URL', restore: 'BENCH_PG_RESTORE_URL' },
    storage: {
      type: 's3',
      bucket: server.bucket,
      prefix: 'bench',
      endpoint: server.endpoint,
      force_path_style: true,
      region: 'us-east-1',
    },
  };
}

function benchProjects(ageRecipient: string, s3Server: TestS3Server | null): BenchProject[] {
  return [
    ...(s3Server ? [s3Project(s3Server)] : []),
    {
      name: 'pg-app',
      provider: 'postgresql',
      environments: {
        bench: 'BENCH_PG_URL',
        small: 'BENCH_PG_SMALL_URL',
        restore: 'BENCH_PG_RESTORE_URL',
        directory: 'BENCH_PG_URL',
        encrypted: 'BENCH_PG_URL',
      },
      environmentSettings: {
        directory: { format: 'directory' },
        encrypted: { encryption: { type: 'age', recipients: [ageRecipient], identity_env: AGE_IDENTITY_ENV } },
      },
    },
    { name: 'tiny-app', provider: 'postgresql', environments: { bench: 'BENCH_PG_TINY_URL' } },
    { name: 'mysql-app', provider: 'mysql', environments: { bench: 'BENCH_MYSQL_URL' } },
    { name: 'sqlite-app', provider: 'sqlite', environments: { bench: 'BENCH_SQLITE_URL' } },
    // Its own backup directory, so the large catalog does not slow the other projects' backups.
    {
      name: 'catalog-app',
      provider: 'sqlite',
      environments: { bench: 'BENCH_CATALOG_URL' },
      backupDirectory: CATALOG_DIRECTORY,
    },
  ];
}

function connectionUrls(services: Services, prepared: Prepared, workDir: string): Record<string, string> {
  return {
    BENCH_PG_URL: pgUrl(services, prepared.pgDatabase),
    BENCH_PG_SMALL_URL: pgUrl(services, prepared.smallDatabase ?? prepared.pgDatabase),
    BENCH_PG_RESTORE_URL: pgUrl(services, RESTORE_TARGET),
    BENCH_PG_TINY_URL: pgUrl(services, TINY_DATABASE),
    BENCH_MYSQL_URL: mysqlUrl(services, prepared.mysqlDatabase ?? 'faber_bench_none'),
    BENCH_SQLITE_URL: `sqlite://${prepared.sqliteFile ?? path.join(workDir, 'none.sqlite')}`,
    BENCH_CATALOG_URL: `sqlite://${path.join(workDir, 'catalog.sqlite')}`,
  };
}

function buildGroups(
  ctx: BenchContext,
  prepared: Prepared,
  options: BenchOptions,
  graph: GraphTimeBench | null,
): BenchGroup[] {
  const rows = (n: number) => `${n.toLocaleString('en')} rows`;
  const ref = pgCases(ctx, 'pg', prepared.pgDatabase);
  const groups: BenchGroup[] = [
    {
      title: `PostgreSQL backup, ${rows(options.rows)} (${(prepared.pgSizeBytes / 1e9).toFixed(2)} GB on disk)`,
      cases: [
        ref.raw,
        ref.durable,
        ref.gzip,
        ref.custom,
        apiBackupCase(ctx, 'pg.api', 'pg-app', 'bench', 'pg.raw'),
        ...(options.skip.has('nx') ? [] : [nxBackupCase(ctx, 'pg.nx', 'pg-app', 'bench', 'pg.raw')]),
      ],
    },
  ];
  if (!options.skip.has('restore')) {
    groups.push({
      title: 'PostgreSQL verify and restore (the backup above)',
      cases: [
        apiVerifyCase(ctx, 'pg.verify', 'pg-app', 'bench', 'warm'),
        apiVerifyCase(ctx, 'pg.verify.cold', 'pg-app', 'bench', 'cold'),
        rawRestoreCase(ctx, 'pg.restore.raw', prepared.pgDatabase),
        apiRestoreCase(ctx, 'pg.restore.api', 'pg-app', 'bench', RESTORE_TARGET, 'pg.restore.raw'),
      ],
    });
  }
  if (!options.skip.has('encryption')) {
    groups.push({
      title: 'PostgreSQL, age-encrypted (the database above; ratios to the unencrypted API case)',
      cases: [
        apiBackupCase(ctx, 'pg-age.api', 'pg-app', 'encrypted', 'pg.api', 'faber backup, age-encrypted (API)'),
        apiVerifyCase(
          ctx,
          'pg-age.verify',
          'pg-app',
          'encrypted',
          'warm',
          'pg.verify',
          'faber verify-backup, age-encrypted, with the identity (API, page cache)',
        ),
      ],
    });
  }
  if (!options.skip.has('directory')) {
    groups.push({
      title: 'PostgreSQL directory format (pg_dump -j, the database above)',
      cases: [
        rawDirectoryCase(ctx, 'pg-dir.raw', prepared.pgDatabase),
        apiBackupCase(ctx, 'pg-dir.api', 'pg-app', 'directory', 'pg-dir.raw', 'faber backup, format directory (API)'),
      ],
    });
  }
  if (!options.skip.has('s3')) {
    groups.push({
      title:
        'PostgreSQL to S3 (the database above; the local S3 server: s3rver behind the test proxy, in the bench process)',
      cases: [
        apiBackupCase(ctx, 'pg-s3.api', 'pg-s3-app', 'bench', 'pg.raw', 'faber backup to S3 (API)'),
        apiRestoreCase(
          ctx,
          'pg-s3.restore.api',
          'pg-s3-app',
          'bench',
          RESTORE_TARGET,
          'pg.restore.raw',
          'faber restore from S3 (API)',
        ),
      ],
    });
  }
  if (prepared.smallDatabase) {
    const small = pgCases(ctx, 'pg-small', prepared.smallDatabase);
    groups.push({
      title: `PostgreSQL backup, ${rows(options.smallRows)} (memory at a second size)`,
      cases: [small.raw, apiBackupCase(ctx, 'pg-small.api', 'pg-app', 'small', 'pg-small.raw')],
    });
  }
  if (prepared.mysqlDatabase) {
    groups.push({
      title: `MariaDB backup, ${rows(options.otherRows)}`,
      cases: [
        mysqlRawCase(ctx, 'mysql.raw', prepared.mysqlDatabase),
        apiBackupCase(ctx, 'mysql.api', 'mysql-app', 'bench', 'mysql.raw'),
      ],
    });
  }
  if (prepared.sqliteFile) {
    groups.push({
      title: `SQLite backup, ${rows(options.otherRows)}`,
      cases: [
        sqliteRawCase(ctx, 'sqlite.raw', prepared.sqliteFile),
        sqliteCopyCase(ctx, 'sqlite.cp', prepared.sqliteFile),
        apiBackupCase(ctx, 'sqlite.api', 'sqlite-app', 'bench', 'sqlite.raw'),
      ],
    });
  }
  if (!options.skip.has('catalog')) {
    groups.push({
      title: `Catalog of ${options.catalogEntries.toLocaleString('en')} backups`,
      cases: catalogCases(ctx, 'catalog-app', 'bench', options.catalogEntries),
    });
  }
  if (!options.skip.has('nx')) {
    const tinyRaw = pgCases(ctx, 'tiny', TINY_DATABASE).raw;
    groups.push({
      title: 'Nx overhead, tiny database (100 rows)',
      cases: [
        tinyRaw,
        nxNoopCase(ctx, 'tiny.noop', 'tiny-app'),
        nxBackupCase(ctx, 'tiny.nx', 'tiny-app', 'bench', 'tiny.raw'),
      ],
    });
  }
  if (graph)
    groups.push({
      title: 'Project graph: what the inferred-targets plugin adds to every Nx command',
      cases: graph.cases,
    });
  return groups;
}

/**
 * Writes the dirty pages earlier cases left (not timed), so no case pays for another's
 * write-back: raw pg_dump -f leaves its whole output to the kernel to write later.
 */
async function settleDisk(): Promise<void> {
  await execa('sync', [], { reject: false });
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

async function runRounds(
  groups: readonly BenchGroup[],
  reps: number,
): Promise<{ samples: Map<string, Sample[]>; errors: Map<string, string> }> {
  const samples = new Map<string, Sample[]>();
  const errors = new Map<string, string>();
  for (let round = 0; round < reps; round++) {
    log(`\nround ${round + 1} of ${reps} (load average ${os.loadavg()[0]!.toFixed(2)})`);
    for (const group of groups) {
      for (const bench of rotate(group.cases, round)) {
        if (errors.has(bench.id)) continue;
        try {
          await settleDisk();
          const sample = await bench.run();
          samples.set(bench.id, [...(samples.get(bench.id) ?? []), sample]);
          const size = sample.sizeBytes === null ? '' : `, ${(sample.sizeBytes / 1024 / 1024).toFixed(1)} MB`;
          const rss =
            sample.peakRssBytes === null ? '' : `, peak RSS ${(sample.peakRssBytes / 1024 / 1024).toFixed(0)} MB`;
          log(`  ${bench.label}: ${(sample.wallMs / 1000).toFixed(2)} s${size}${rss}`);
        } catch (error) {
          errors.set(bench.id, (error as Error).message);
          log(`  ${bench.label}: FAILED (${(error as Error).message}); left out of later rounds`);
        }
      }
    }
  }
  return { samples, errors };
}

async function build(repo: string): Promise<void> {
  log('building the package (npm run build): the benchmark runs the compiled code, as users do');
  const result = await execa('npm', ['run', 'build'], { cwd: repo, reject: false, all: true });
  if (result.exitCode !== 0) throw new Error(`npm run build failed:\n${String(result.all).slice(-2000)}`);
}

async function warmUp(ctx: BenchContext, prepared: Prepared, options: BenchOptions): Promise<void> {
  log('warm-up (not measured): one pg_dump of each PostgreSQL dataset (page cache), Nx project graph');
  for (const database of [prepared.pgDatabase, prepared.smallDatabase].filter(
    (name): name is string => name !== null,
  )) {
    await measureCommand('pg_dump', [...pgArgs(ctx.services), '-f', rawDumpPath(ctx, database), database]);
  }
  if (!options.skip.has('nx')) {
    await measureCommand(path.join(ctx.repo, 'node_modules', '.bin', 'nx'), ['show', 'projects'], {
      cwd: ctx.workspace.root,
      env: nxEnv(process.env, ctx.urls),
      extendEnv: false,
    });
  }
}

function machineFacts(services: Services): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((value) => Number(value.toFixed(2))),
    postgres: `${services.pg.host}:${services.pg.port}`,
    peakRssSource: canMeasureRss
      ? 'GNU time (%M) for tools and nx; process.resourceUsage().maxRSS for API children'
      : 'process.resourceUsage().maxRSS for API children only (install GNU time for the rest)',
  };
}

function writeResults(repo: string, payload: Record<string, unknown>, markdown: string): string {
  const dir = path.join(repo, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `bench-${stamp}.json`);
  const json = `${JSON.stringify(payload, null, 2)}\n`;
  writeFileSync(file, json);
  writeFileSync(path.join(dir, 'latest.json'), json);
  writeFileSync(path.join(dir, 'latest.md'), markdown);
  return file;
}

async function main(): Promise<number> {
  const started = Date.now();
  const options = parseOptions(process.argv.slice(2));
  const repo = path.resolve(path.dirname(process.argv[1] ?? 'bench/run.ts'), '..');
  const services = servicesFromEnv(process.env);
  const status = await checkServices(services);
  if (status.postgresql) {
    log(`✗ ${status.postgresql}`);
    log('The PostgreSQL cases are the core of this benchmark; nothing was measured.');
    return 2;
  }
  if (status.mariadb && !options.skip.has('mysql')) {
    log(`! ${status.mariadb}`);
    log('  The MariaDB cases are skipped.');
  }
  log(
    `faber-db benchmark: ${options.rows.toLocaleString('en')} rows, ${options.reps} rounds, ${os.cpus().length} cores, Node ${process.version}`,
  );
  if (os.loadavg()[0]! > 1.5)
    log(
      `! load average is ${os.loadavg()[0]!.toFixed(2)}: other work on this machine will widen the spread of the figures`,
    );
  await build(repo);
  const cacheDir = path.join(os.tmpdir(), 'faber-bench-cache');
  mkdirSync(cacheDir, { recursive: true });
  const prepared = await prepareDatasets(services, options, status.mariadb === null, cacheDir);
  const ageIdentity = await generateX25519Identity();
  const s3Server = options.skip.has('s3') ? null : await startS3Server({ enforceConditions: true });
  if (s3Server) log(`S3 server for the s3 group: @20minutes/s3rver behind the test proxy at ${s3Server.endpoint}`);
  const workspace: BenchWorkspace = createBenchWorkspace(
    repo,
    benchProjects(await identityToRecipient(ageIdentity), s3Server),
  );
  // Outside the Nx workspace: Nx hashes every file of a workspace it does not ignore.
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'faber-bench-raw-'));
  const ctx: BenchContext = {
    repo,
    services,
    workspace,
    workDir,
    urls: { ...connectionUrls(services, prepared, workDir), [AGE_IDENTITY_ENV]: ageIdentity, ...s3Server?.env },
    latestBackup: new Map(),
    latestBackupFile: new Map(),
  };
  let graph: GraphTimeBench | null = null;
  try {
    if (!options.skip.has('catalog'))
      writeLargeCatalog(workspace.root, CATALOG_DIRECTORY, 'catalog-app', 'bench', options.catalogEntries);
    await warmUp(ctx, prepared, options);
    let curve: { sampleBytes: number; points: CurvePoint[] } | null = null;
    if (!options.skip.has('curve')) {
      log('zstd level curve on a 32 MB sample of the dump (one core, node:zlib)');
      curve = measureCurve(rawDumpPath(ctx, prepared.pgDatabase), 32 * 1024 * 1024);
    }
    let stages: StageCosts | null = null;
    if (!options.skip.has('stages')) {
      log('CPU per stage: the pipeline stages replayed one at a time over the raw dump (CPU seconds of this process)');
      stages = await measureStages(rawDumpPath(ctx, prepared.pgDatabase), path.join(workDir, 'stages.zst'), 1);
    }
    graph = options.skip.has('graph') ? null : graphTimeCases(repo);
    const groups = buildGroups(ctx, prepared, options, graph);
    const { samples, errors } = await runRounds(groups, options.reps);
    const summaries = summarize(groups, samples, errors);
    const stageLines = stages
      ? stagesTable(stages, summaries.find((summary) => summary.id === 'pg.raw')?.cpuSeconds ?? null)
      : null;
    const phaseLines = phasesTable(summaries);
    const checks = checkTargets(summaries);
    const elapsed = (Date.now() - started) / 1000;
    log(`\n${terminalTable(summaries)}\n`);
    if (stageLines) log(`CPU per stage (each replayed alone over the raw dump):\n${stageLines}\n`);
    if (phaseLines) log(`Where each API backup's time goes, between its steps:\n${phaseLines}\n`);
    log('Targets (issues 5, 11 and 13):');
    for (const line of targetLines(checks)) log(`  ${line}`);
    if (options.rows !== REFERENCE_ROWS)
      log(
        `  (The time ratios are defined for the reference database, --rows=${REFERENCE_ROWS}; at other sizes fixed costs such as Nx start-up weigh differently.)`,
      );
    for (const [id, message] of errors) log(`  ! ${id}: ${message}`);
    const markdown = [
      markdownTable(summaries),
      '',
      ...targetLines(checks).map((line) => `- ${line}`),
      ...(stageLines ? ['', stageLines] : []),
      ...(phaseLines ? ['', phaseLines] : []),
      ...(curve ? ['', curveTable(curve.points)] : []),
      '',
    ].join('\n');
    const file = writeResults(
      repo,
      {
        date: new Date().toISOString(),
        elapsedSeconds: Math.round(elapsed),
        options: { ...options, skip: [...options.skip] },
        machine: machineFacts(services),
        datasets: prepared,
        cases: summaries,
        targets: checks,
        stages,
        zstdCurve: curve,
      },
      markdown,
    );
    if (curve)
      log(
        `\nzstd level curve (${(curve.sampleBytes / 1024 / 1024).toFixed(0)} MB sample):\n${curveTable(curve.points)}`,
      );
    log(
      `\nresults: ${path.relative(process.cwd(), file)} (and latest.md); total ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s`,
    );
    return errors.size > 0 ? 1 : 0;
  } finally {
    await s3Server?.close();
    if (options.keep) log(`workspace kept: ${workspace.root} (raw tool output: ${workDir})`);
    else {
      workspace.remove();
      graph?.remove();
      rmSync(workDir, { recursive: true, force: true });
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(`✗ benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
