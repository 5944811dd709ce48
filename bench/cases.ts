/** What is measured: each case runs once per round and returns one sample. */
import { readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { measureCommand, type Measured } from './measure.ts';
import { mysqlArgs, pgArgs, psql, type Services } from './services.ts';
import { nxEnv, type BenchWorkspace } from './workspace.ts';

export interface Sample {
  wallMs: number;
  sizeBytes: number | null;
  peakRssBytes: number | null;
  /** CPU seconds (user + system): of the Node process for API cases, of the command and its children otherwise. */
  cpuSeconds: number | null;
  /** Extra facts (process wall, the dump tool's CPU seconds) kept in the JSON. */
  detail?: Record<string, number | string>;
}

export interface BenchCase {
  id: string;
  label: string;
  /** The case whose median wall time this one's is divided by. */
  baseline?: string;
  run(): Promise<Sample>;
}

export interface BenchGroup {
  title: string;
  cases: BenchCase[];
}

export interface BenchContext {
  repo: string;
  services: Services;
  workspace: BenchWorkspace;
  /** Where raw tool output goes (inside the workspace, removed with it). */
  workDir: string;
  /** Connection URLs our operations read, by variable name. */
  urls: Record<string, string>;
  /** The newest backup each project made through the API, for verify and restore. */
  latestBackup: Map<string, string>;
  /** Its file, absolute. */
  latestBackupFile: Map<string, string>;
}

interface ChildReport {
  durationMs: number;
  processMs: number;
  maxRssBytes: number;
  cpuSeconds: number;
  /** CPU seconds of the child processes (the dump tool), null off Linux. */
  childCpuSeconds: number | null;
  /** A backup's time between its steps (operation-child.mjs, `phases`); null for other operations. */
  phasesMs: Record<string, number> | null;
  result: { status: string; error_code?: string; error?: string; result?: Record<string, unknown> };
}

/** Runs one API operation in a fresh process (bench/operation-child.mjs). */
export async function runOperationChild(
  ctx: BenchContext,
  operation: string,
  projectName: string,
  options: Record<string, unknown>,
): Promise<ChildReport> {
  const child = path.join(ctx.repo, 'bench', 'operation-child.mjs');
  const request = {
    operation,
    workspaceRoot: ctx.workspace.root,
    projectName,
    projectRoot: ctx.workspace.projectRoot(projectName),
    options,
  };
  const result = await execa(process.execPath, [child, JSON.stringify(request)], {
    env: { ...process.env, ...ctx.urls },
    reject: false,
    stdin: 'ignore',
  });
  const line = String(result.stdout).trim().split('\n').at(-1) ?? '';
  let report: ChildReport;
  try {
    report = JSON.parse(line) as ChildReport;
  } catch {
    throw new Error(
      `${operation} (${projectName}) crashed: ${String(result.stderr).trim().split('\n').slice(-5).join(' | ')}`,
    );
  }
  if (report.result.status !== 'success')
    throw new Error(`${operation} (${projectName}) failed: ${report.result.error_code}: ${report.result.error}`);
  return report;
}

function childSample(report: ChildReport, sizeBytes: number | null): Sample {
  return {
    wallMs: report.durationMs,
    sizeBytes,
    peakRssBytes: report.maxRssBytes,
    cpuSeconds: report.cpuSeconds,
    detail: {
      processMs: Math.round(report.processMs),
      ...(report.childCpuSeconds === null ? {} : { toolCpuSeconds: Number(report.childCpuSeconds.toFixed(2)) }),
      ...report.phasesMs,
    },
  };
}

function fileSample(measured: Measured, file: string): Sample {
  return {
    wallMs: measured.wallMs,
    sizeBytes: statSync(file).size,
    peakRssBytes: measured.peakRssBytes,
    cpuSeconds: measured.cpuSeconds,
  };
}

/** Our backup through the API; remembers the id for verify and restore. */
export function apiBackupCase(
  ctx: BenchContext,
  id: string,
  project: string,
  environment: string,
  baseline: string,
  label = `faber backup (API, ${project})`,
): BenchCase {
  return {
    id,
    label,
    baseline,
    async run() {
      const report = await runOperationChild(ctx, 'backup', project, { environment });
      const data = report.result.result ?? {};
      ctx.latestBackup.set(`${project}:${environment}`, String(data.backup_id));
      ctx.latestBackupFile.set(`${project}:${environment}`, path.resolve(ctx.workspace.root, String(data.file_path)));
      return childSample(report, Number(data.size_bytes));
    },
  };
}

/** `nx run <project>:backup:<environment>` in the bench workspace: Nx start-up, graph, executor and all. */
export function nxBackupCase(
  ctx: BenchContext,
  id: string,
  project: string,
  environment: string,
  baseline: string,
): BenchCase {
  const nx = path.join(ctx.repo, 'node_modules', '.bin', 'nx');
  return {
    id,
    label: `nx run ${project}:backup:${environment}`,
    baseline,
    async run() {
      const measured = await measureCommand(nx, ['run', `${project}:backup:${environment}`], {
        cwd: ctx.workspace.root,
        env: nxEnv(process.env, ctx.urls),
        extendEnv: false,
      });
      // The executor's own "Duration: 8.1 s" line: the rest of the wall time is Nx's.
      const duration = /^Duration: ([\d.]+) s$/m.exec(measured.stdout)?.[1];
      return {
        wallMs: measured.wallMs,
        sizeBytes: null,
        peakRssBytes: measured.peakRssBytes,
        cpuSeconds: measured.cpuSeconds,
        ...(duration ? { detail: { backupMs: Number(duration) * 1000 } } : {}),
      };
    },
  };
}

/** `nx run <project>:noop` (an nx:noop target) in the same workspace: Nx's start-up and task run alone. */
export function nxNoopCase(ctx: BenchContext, id: string, project: string): BenchCase {
  const nx = path.join(ctx.repo, 'node_modules', '.bin', 'nx');
  return {
    id,
    label: `nx run ${project}:noop (Nx alone)`,
    async run() {
      const measured = await measureCommand(nx, ['run', `${project}:noop`], {
        cwd: ctx.workspace.root,
        env: nxEnv(process.env, ctx.urls),
        extendEnv: false,
      });
      return {
        wallMs: measured.wallMs,
        sizeBytes: null,
        peakRssBytes: measured.peakRssBytes,
        cpuSeconds: measured.cpuSeconds,
      };
    },
  };
}

export function pgCases(
  ctx: BenchContext,
  prefix: string,
  database: string,
): Record<'raw' | 'durable' | 'gzip' | 'custom', BenchCase> {
  const rawFile = path.join(ctx.workDir, `${database}.sql`);
  const gzipFile = path.join(ctx.workDir, `${database}.sql.gz`);
  const customFile = path.join(ctx.workDir, `${database}.dump`);
  const args = pgArgs(ctx.services);
  return {
    raw: {
      id: `${prefix}.raw`,
      label: 'pg_dump -f (plain, raw)',
      run: async () => fileSample(await measureCommand('pg_dump', [...args, '-f', rawFile, database]), rawFile),
    },
    durable: {
      id: `${prefix}.durable`,
      label: 'pg_dump -f, then fsync (durable raw)',
      baseline: `${prefix}.raw`,
      // We fsync every backup before calling it done; pg_dump -f (plain) does not fsync at all.
      run: async () =>
        fileSample(
          await measureCommand('bash', [
            '-c',
            `pg_dump ${args.join(' ')} -f '${rawFile}' ${database} && sync '${rawFile}'`,
          ]),
          rawFile,
        ),
    },
    gzip: {
      id: `${prefix}.gzip`,
      label: 'pg_dump | gzip -6 (the original)',
      baseline: `${prefix}.raw`,
      run: async () =>
        fileSample(
          await measureCommand('bash', [
            '-o',
            'pipefail',
            '-c',
            `pg_dump ${args.join(' ')} ${database} | gzip -6 > '${gzipFile}'`,
          ]),
          gzipFile,
        ),
    },
    custom: {
      id: `${prefix}.custom`,
      label: 'pg_dump -Fc (default compression)',
      baseline: `${prefix}.raw`,
      run: async () =>
        fileSample(await measureCommand('pg_dump', [...args, '-Fc', '-f', customFile, database]), customFile),
    },
  };
}

function directorySize(directory: string): number {
  return readdirSync(directory).reduce((sum, name) => sum + statSync(path.join(directory, name)).size, 0);
}

/** Our default for the directory format's pg_dump -j (src/operations/backup.ts), so both do the same work. */
export const DIRECTORY_JOBS = Math.max(1, Math.min(8, os.availableParallelism()));

/** `pg_dump -Fd -j N -Z1`: what our directory-format backup runs, by hand. */
export function rawDirectoryCase(ctx: BenchContext, id: string, database: string): BenchCase {
  const directory = path.join(ctx.workDir, `${database}.dir`);
  return {
    id,
    label: `pg_dump -Fd -j ${DIRECTORY_JOBS} -Z1 (raw)`,
    async run() {
      rmSync(directory, { recursive: true, force: true });
      const measured = await measureCommand('pg_dump', [
        ...pgArgs(ctx.services),
        '-Fd',
        `-j${DIRECTORY_JOBS}`,
        '-Z1',
        '-f',
        directory,
        database,
      ]);
      return {
        wallMs: measured.wallMs,
        sizeBytes: directorySize(directory),
        peakRssBytes: measured.peakRssBytes,
        cpuSeconds: measured.cpuSeconds,
      };
    },
  };
}

export function rawDumpPath(ctx: BenchContext, database: string): string {
  return path.join(ctx.workDir, `${database}.sql`);
}

/** `psql -f` of the plain dump into a new database, with the flags our restore uses. */
export function rawRestoreCase(ctx: BenchContext, id: string, database: string): BenchCase {
  const target = 'faber_bench_restore_raw';
  return {
    id,
    label: 'psql -f plain dump (raw)',
    async run() {
      await psql(ctx.services, 'postgres', `DROP DATABASE IF EXISTS ${target}; CREATE DATABASE ${target};`);
      try {
        const measured = await measureCommand('psql', [
          ...pgArgs(ctx.services),
          '-X',
          '-q',
          '-v',
          'ON_ERROR_STOP=1',
          '--single-transaction',
          '-f',
          rawDumpPath(ctx, database),
          '-d',
          target,
        ]);
        return {
          wallMs: measured.wallMs,
          sizeBytes: null,
          peakRssBytes: measured.peakRssBytes,
          cpuSeconds: measured.cpuSeconds,
        };
      } finally {
        await psql(ctx.services, 'postgres', `DROP DATABASE IF EXISTS ${target}`);
      }
    },
  };
}

/** Our restore through the API (verify, scratch database, load, check, swap) into a new database. */
export function apiRestoreCase(
  ctx: BenchContext,
  id: string,
  project: string,
  fromEnvironment: string,
  targetDatabase: string,
  baseline: string,
  label = `faber restore (API, ${project})`,
): BenchCase {
  return {
    id,
    label,
    baseline,
    async run() {
      const from = ctx.latestBackup.get(`${project}:${fromEnvironment}`);
      if (!from) throw new Error('no backup to restore (the API backup case did not run)');
      await psql(ctx.services, 'postgres', `DROP DATABASE IF EXISTS ${targetDatabase}`);
      try {
        return childSample(
          await runOperationChild(ctx, 'restore', project, { environment: 'restore', from, yes: true }),
          null,
        );
      } finally {
        await psql(ctx.services, 'postgres', `DROP DATABASE IF EXISTS ${targetDatabase}`);
      }
    },
  };
}

/**
 * verify-backup of the newest API backup. Warm: the file as the backup left it, in the page
 * cache. Cold: the file dropped from the page cache first (GNU dd's nocache flag: posix_fadvise
 * DONTNEED on that one file, after the sync every case starts with), so it is read from disk.
 */
export function apiVerifyCase(
  ctx: BenchContext,
  id: string,
  project: string,
  environment: string,
  cache: 'warm' | 'cold',
  baseline?: string,
  label?: string,
): BenchCase {
  return {
    id,
    label: label ?? `faber verify-backup (API, ${cache === 'warm' ? 'file in page cache' : 'file read from disk'})`,
    ...(baseline ? { baseline } : {}),
    async run() {
      const key = `${project}:${environment}`;
      const backupId = ctx.latestBackup.get(key);
      const file = ctx.latestBackupFile.get(key);
      if (!backupId || !file) throw new Error('no backup to verify (the API backup case did not run)');
      if (cache === 'cold') await execa('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
      return childSample(await runOperationChild(ctx, 'verify', project, { environment, backupId }), null);
    },
  };
}

export function mysqlRawCase(ctx: BenchContext, id: string, database: string): BenchCase {
  const file = path.join(ctx.workDir, `${database}.mysql.sql`);
  // The flags our MySQL handler passes, so both dumps do the same work.
  const flags = [
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--default-character-set=utf8mb4',
    '--no-tablespaces',
  ];
  return {
    id,
    label: 'mariadb-dump (raw)',
    run: async () =>
      fileSample(
        await measureCommand('mariadb-dump', [...mysqlArgs(ctx.services), ...flags, `--result-file=${file}`, database]),
        file,
      ),
  };
}

export function sqliteCopyCase(ctx: BenchContext, id: string, file: string): BenchCase {
  const copy = path.join(ctx.workDir, path.basename(file));
  return {
    id,
    label: 'cp database file (for scale)',
    run: async () => fileSample(await measureCommand('cp', [file, copy]), copy),
  };
}

/** SQLite's own online backup (the sqlite3 shell's .backup: every page in one step), then `zstd -1` of the copy. */
export function sqliteRawCase(ctx: BenchContext, id: string, file: string): BenchCase {
  const copy = path.join(ctx.workDir, `${path.basename(file)}.backup`);
  return {
    id,
    label: 'sqlite3 .backup, then zstd -1 (raw)',
    async run() {
      rmSync(copy, { force: true });
      const measured = await measureCommand('bash', [
        '-o',
        'pipefail',
        '-c',
        `sqlite3 '${file}' ".backup '${copy}'" && zstd -1 -q -f '${copy}' -o '${copy}.zst'`,
      ]);
      const sample = fileSample(measured, `${copy}.zst`);
      rmSync(copy, { force: true });
      return sample;
    },
  };
}

export function catalogCases(ctx: BenchContext, project: string, environment: string, entries: number): BenchCase[] {
  return [
    {
      id: 'catalog.list',
      label: `list-backups (API, ${entries.toLocaleString('en')} entries)`,
      run: async () => childSample(await runOperationChild(ctx, 'list', project, { environment }), null),
    },
    {
      id: 'catalog.cleanup',
      label: `cleanup-backups --dryRun (API, ${entries.toLocaleString('en')} entries)`,
      run: async () =>
        childSample(await runOperationChild(ctx, 'cleanup', project, { environment, dryRun: true }), null),
    },
  ];
}
