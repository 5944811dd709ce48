/** Summaries, the targets of issues 5, 11 and 13, and the table (terminal and Markdown). */
import type { BenchGroup, Sample } from './cases.ts';
import { median } from './measure.ts';
import type { CurvePoint } from './zstd-curve.ts';

export interface CaseSummary {
  id: string;
  group: string;
  label: string;
  baseline: string | null;
  runs: number;
  wallMs: { median: number; min: number; max: number } | null;
  ratio: number | null;
  sizeBytes: number | null;
  /** Largest over the runs. */
  peakRssBytes: number | null;
  /** Median CPU seconds (see Sample.cpuSeconds). */
  cpuSeconds: number | null;
  error: string | null;
  samples: Sample[];
}

export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

export function summarize(
  groups: readonly BenchGroup[],
  samples: Map<string, Sample[]>,
  errors: Map<string, string>,
): CaseSummary[] {
  const summaries: CaseSummary[] = [];
  for (const group of groups) {
    for (const bench of group.cases) {
      const runs = samples.get(bench.id) ?? [];
      const walls = runs.map((sample) => sample.wallMs);
      const sizes = runs.map((sample) => sample.sizeBytes).filter((size): size is number => size !== null);
      const rss = runs.map((sample) => sample.peakRssBytes).filter((value): value is number => value !== null);
      const cpu = runs.map((sample) => sample.cpuSeconds).filter((value): value is number => value !== null);
      summaries.push({
        id: bench.id,
        group: group.title,
        label: bench.label,
        baseline: bench.baseline ?? null,
        runs: runs.length,
        wallMs: walls.length ? { median: median(walls), min: Math.min(...walls), max: Math.max(...walls) } : null,
        ratio: null,
        sizeBytes: sizes.length ? median(sizes) : null,
        peakRssBytes: rss.length ? Math.max(...rss) : null,
        cpuSeconds: cpu.length ? median(cpu) : null,
        error: errors.get(bench.id) ?? null,
        samples: runs,
      });
    }
  }
  const byId = new Map(summaries.map((summary) => [summary.id, summary]));
  for (const summary of summaries) {
    const base = summary.baseline ? byId.get(summary.baseline)?.wallMs?.median : undefined;
    if (base && summary.wallMs) summary.ratio = summary.wallMs.median / base;
  }
  return summaries;
}

const MB = 1024 * 1024;

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function megabytes(bytes: number | null): string {
  return bytes === null ? '' : `${(bytes / MB).toFixed(bytes < 10 * MB ? 2 : 1)} MB`;
}

/** The targets, judged from the medians of this run. */
export function checkTargets(summaries: readonly CaseSummary[]): TargetCheck[] {
  const get = (id: string) => summaries.find((summary) => summary.id === id);
  const checks: TargetCheck[] = [];
  const api = get('pg.api');
  const gzip = get('pg.gzip');
  if (api?.ratio != null) {
    checks.push({
      target: 'backup (API, verification included) ≤ 1.25× raw pg_dump -f',
      measured: `${api.ratio.toFixed(2)}×`,
      met: api.ratio <= 1.25,
    });
  }
  const raw = get('pg.raw');
  if (api?.cpuSeconds != null && raw?.cpuSeconds != null) {
    checks.push({
      target: '(for information) CPU seconds: backup process (Node) vs pg_dump -f',
      measured: `${api.cpuSeconds.toFixed(2)} s vs ${raw.cpuSeconds.toFixed(2)} s`,
      met: null,
    });
  }
  const nx = get('pg.nx');
  if (nx?.ratio != null && nx.wallMs && api?.wallMs) {
    // Not a target of its own: the same backup plus Nx's start-up, which has its own target below.
    const nxShare = nx.wallMs.median - api.wallMs.median;
    checks.push({
      target: '(for information) backup through nx run, ratio to raw',
      measured: `${nx.ratio.toFixed(2)}× (the API backup + ${seconds(nxShare)} of Nx)`,
      met: null,
    });
  }
  if (api?.sizeBytes != null && gzip?.sizeBytes != null) {
    checks.push({
      target: 'backup size ≤ pg_dump | gzip -6',
      measured: `${megabytes(api.sizeBytes)} vs ${megabytes(gzip.sizeBytes)}`,
      met: api.sizeBytes <= gzip.sizeBytes,
    });
  }
  const apiCases = summaries.filter((summary) => summary.label.includes('(API') && summary.peakRssBytes !== null);
  // Issue 11 bounds the S3 cases (the AWS SDK and its upload buffers) separately, at 200 MB.
  const [s3Cases, localCases] = [apiCases.filter(isS3Case), apiCases.filter((summary) => !isS3Case(summary))];
  if (localCases.length > 0) {
    const largest = largestRss(localCases);
    checks.push({
      target: 'peak RSS < 150 MB (every API case on local disk, no V8 flags)',
      measured: `${megabytes(largest.peakRssBytes)} (${largest.label})`,
      met: (largest.peakRssBytes ?? 0) < 150 * MB,
    });
  }
  if (s3Cases.length > 0) {
    const largest = largestRss(s3Cases);
    checks.push({
      target: 'peak RSS < 200 MB (every API case through S3)',
      measured: `${megabytes(largest.peakRssBytes)} (${largest.label})`,
      met: (largest.peakRssBytes ?? 0) < 200 * MB,
    });
  }
  const small = get('pg-small.api');
  if (api?.peakRssBytes != null && small?.peakRssBytes != null) {
    const growth = api.peakRssBytes - small.peakRssBytes;
    checks.push({
      target: 'peak RSS does not grow with database size (within 10 MB)',
      measured: `${megabytes(small.peakRssBytes)} → ${megabytes(api.peakRssBytes)} (${growth >= 0 ? '+' : ''}${megabytes(growth)})`,
      met: growth < 10 * MB,
    });
  }
  const restore = get('pg.restore.api');
  if (restore?.ratio != null) {
    checks.push({
      target: 'restore ≤ 1.1× raw psql -f',
      measured: `${restore.ratio.toFixed(2)}×`,
      met: restore.ratio <= 1.1,
    });
  }
  const encrypted = get('pg-age.api');
  if (encrypted?.ratio != null) {
    checks.push({
      target: 'age-encrypted backup ≤ 1.10× the unencrypted one',
      measured: `${encrypted.ratio.toFixed(2)}×`,
      met: encrypted.ratio <= 1.1,
    });
  }
  const s3 = get('pg-s3.api');
  if (s3?.ratio != null)
    checks.push({
      target: 'backup to S3 (local S3 server) ≤ 1.3× raw pg_dump -f',
      measured: `${s3.ratio.toFixed(2)}×`,
      met: s3.ratio <= 1.3,
    });
  if (s3?.wallMs && api?.wallMs) {
    checks.push({
      target: '(for information) backup to S3 vs backup to local disk (API)',
      measured: `${(s3.wallMs.median / api.wallMs.median).toFixed(2)}× (${seconds(s3.wallMs.median)} vs ${seconds(api.wallMs.median)})`,
      met: null,
    });
  }
  const s3Restore = get('pg-s3.restore.api');
  if (s3Restore?.ratio != null)
    checks.push({
      target: '(for information) restore from S3, ratio to raw psql -f',
      measured: `${s3Restore.ratio.toFixed(2)}×`,
      met: null,
    });
  if (s3Restore?.wallMs && restore?.wallMs) {
    checks.push({
      target: '(for information) restore from S3 vs restore from local disk (API)',
      measured: `${(s3Restore.wallMs.median / restore.wallMs.median).toFixed(2)}× (${seconds(s3Restore.wallMs.median)} vs ${seconds(restore.wallMs.median)})`,
      met: null,
    });
  }
  const mysql = get('mysql.api');
  if (mysql?.ratio != null)
    checks.push({
      target: 'MariaDB backup ≤ 1.3× raw mariadb-dump',
      measured: `${mysql.ratio.toFixed(2)}×`,
      met: mysql.ratio <= 1.3,
    });
  const sqlite = get('sqlite.api');
  if (sqlite?.ratio != null)
    checks.push({
      target: 'SQLite backup ≤ 1.5× sqlite3 .backup + zstd -1',
      measured: `${sqlite.ratio.toFixed(2)}×`,
      met: sqlite.ratio <= 1.5,
    });
  const list = get('catalog.list');
  if (list?.wallMs)
    checks.push({
      target: 'list-backups over the large catalog < 0.5 s',
      measured: seconds(list.wallMs.median),
      met: list.wallMs.median < 500,
    });
  const cleanup = get('catalog.cleanup');
  if (cleanup?.wallMs)
    checks.push({
      target: 'cleanup planning over the large catalog < 1 s',
      measured: seconds(cleanup.wallMs.median),
      met: cleanup.wallMs.median < 1000,
    });
  const tinyNx = get('tiny.nx');
  const tinyNoop = get('tiny.noop');
  if (tinyNx?.wallMs && tinyNoop?.wallMs) {
    const ours = tinyNx.wallMs.median - tinyNoop.wallMs.median;
    checks.push({
      target: 'nx run app:backup − nx run app:noop on a tiny database ≤ 0.5 s',
      measured: `${seconds(ours)} (backup ${seconds(tinyNx.wallMs.median)} − noop ${seconds(tinyNoop.wallMs.median)})`,
      met: ours <= 500,
    });
    checks.push({
      target: '(for information) Nx start-up: nx run of an nx:noop target',
      measured: seconds(tinyNoop.wallMs.median),
      met: null,
    });
  }
  return checks;
}

function isS3Case(summary: CaseSummary): boolean {
  return summary.id.startsWith('pg-s3.');
}

function largestRss(cases: readonly CaseSummary[]): CaseSummary {
  return cases.reduce((a, b) => ((a.peakRssBytes ?? 0) >= (b.peakRssBytes ?? 0) ? a : b));
}

interface Column {
  title: string;
  align: 'left' | 'right';
  value(summary: CaseSummary): string;
}

const COLUMNS: Column[] = [
  { title: 'case', align: 'left', value: (s) => s.label },
  {
    title: 'wall (median)',
    align: 'right',
    value: (s) => (s.error ? 'FAILED' : s.wallMs ? seconds(s.wallMs.median) : ''),
  },
  {
    title: 'min–max',
    align: 'right',
    value: (s) =>
      s.wallMs && s.runs > 1 ? `${(s.wallMs.min / 1000).toFixed(2)}–${(s.wallMs.max / 1000).toFixed(2)}` : '',
  },
  {
    title: '× raw',
    align: 'right',
    value: (s) => (s.ratio === null ? (s.baseline ? '' : s.id.endsWith('.raw') ? '1.00' : '') : s.ratio.toFixed(2)),
  },
  { title: 'size', align: 'right', value: (s) => megabytes(s.sizeBytes) },
  { title: 'peak RSS', align: 'right', value: (s) => megabytes(s.peakRssBytes) },
  { title: 'CPU s', align: 'right', value: (s) => (s.cpuSeconds === null ? '' : s.cpuSeconds.toFixed(2)) },
];

function rowsByGroup(summaries: readonly CaseSummary[]): Map<string, CaseSummary[]> {
  const groups = new Map<string, CaseSummary[]>();
  for (const summary of summaries) groups.set(summary.group, [...(groups.get(summary.group) ?? []), summary]);
  return groups;
}

export function terminalTable(summaries: readonly CaseSummary[]): string {
  const widths = COLUMNS.map((column) =>
    Math.max(column.title.length, ...summaries.map((s) => column.value(s).length)),
  );
  const pad = (text: string, i: number) =>
    COLUMNS[i]!.align === 'left' ? text.padEnd(widths[i]!) : text.padStart(widths[i]!);
  const lines = [
    COLUMNS.map((column, i) => pad(column.title, i)).join('  '),
    widths.map((w) => '─'.repeat(w)).join('  '),
  ];
  for (const [group, rows] of rowsByGroup(summaries)) {
    lines.push(group);
    for (const row of rows)
      lines.push(COLUMNS.map((column, i) => pad(i === 0 ? `  ${column.value(row)}` : column.value(row), i)).join('  '));
  }
  return lines.join('\n');
}

export function markdownTable(summaries: readonly CaseSummary[]): string {
  const lines = [
    `| ${COLUMNS.map((c) => c.title).join(' | ')} |`,
    `|${COLUMNS.map((c) => (c.align === 'left' ? ':---' : '---:')).join('|')}|`,
  ];
  for (const [group, rows] of rowsByGroup(summaries)) {
    lines.push(`| **${group}** |${' |'.repeat(COLUMNS.length - 1)}`);
    for (const row of rows) lines.push(`| ${COLUMNS.map((c) => c.value(row).replaceAll('|', '\\|')).join(' | ')} |`);
  }
  return lines.join('\n');
}

export function targetLines(checks: readonly TargetCheck[]): string[] {
  return checks.map(
    (check) => `${check.met === null ? '·' : check.met ? '✓' : '✗'} ${check.target}: ${check.measured}`,
  );
}

export function curveTable(points: readonly CurvePoint[]): string {
  const lines = ['| codec | level | MB/s (1 core) | size / original |', '|:---|---:|---:|---:|'];
  for (const point of points)
    lines.push(
      `| ${point.codec} | ${point.level} | ${point.mbPerSecond.toFixed(0)} | ${(point.ratio * 100).toFixed(1)} % |`,
    );
  return lines.join('\n');
}

/** A backup's steps as operation-child.mjs reports them (`phasesMs`), in order, with their column titles. */
const PHASES = [
  ['beforeDumpMs', 'call → dump started (config, pre-checks, id)'],
  ['firstBytesMs', '→ first MB through the pipeline'],
  ['dumpMs', '→ file written, decoded and fsynced'],
  ['rereadMs', '→ stored file re-read, provenance'],
  ['recordMs', '→ catalog entry (the end)'],
] as const;

/**
 * Where an API backup's time goes besides the dump itself: the median milliseconds between its
 * steps, for every case whose samples carry them. Null when none does.
 */
export function phasesTable(summaries: readonly CaseSummary[]): string | null {
  const rows: string[] = [];
  for (const summary of summaries) {
    const columns = PHASES.map(([key]) => {
      const values = summary.samples
        .map((sample) => sample.detail?.[key])
        .filter((value): value is number => typeof value === 'number');
      return values.length ? `${Math.round(median(values))}` : null;
    });
    if (columns.every((column) => column !== null)) rows.push(`| ${summary.label} | ${columns.join(' | ')} |`);
  }
  if (rows.length === 0) return null;
  return [
    `| backup (ms, medians) | ${PHASES.map(([, title]) => title).join(' | ')} |`,
    `|:---|${PHASES.map(() => '---:').join('|')}|`,
    ...rows,
  ].join('\n');
}
