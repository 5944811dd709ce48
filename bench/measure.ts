/** Running a command and measuring it: wall time, and peak RSS where the machine can tell. */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa, type Options } from 'execa';

const GNU_TIME = '/usr/bin/time';

export interface Measured {
  wallMs: number;
  /** Largest resident set of the command or of any one of its descendants, in bytes. */
  peakRssBytes: number | null;
  /** User + system CPU seconds of the command and the descendants it waited for (GNU time). */
  cpuSeconds: number | null;
  stdout: string;
}

export const canMeasureRss = existsSync(GNU_TIME);

/**
 * Runs `file args` and times it. Under GNU time when installed: its `%M` is the largest RSS of
 * the command and of every descendant it waited for (a shell pipeline reports its biggest stage).
 */
export async function measureCommand(file: string, args: readonly string[], options: Options = {}): Promise<Measured> {
  const report = path.join(tmpdir(), `faber-bench-time-${process.pid}-${Date.now()}`);
  const [command, commandArgs] = canMeasureRss
    ? [GNU_TIME, ['-f', '%M %U %S', '-o', report, file, ...args]]
    : [file, [...args]];
  const started = performance.now();
  const result = await execa(command, commandArgs, { stdin: 'ignore', ...options, stderr: 'pipe', reject: false });
  const wallMs = performance.now() - started;
  if (result.exitCode !== 0) {
    rmSync(report, { force: true });
    const stderr = String(result.stderr ?? '')
      .trim()
      .split('\n')
      .slice(-5)
      .join('\n');
    throw new Error(`${file} ${args.join(' ')} failed (exit ${result.exitCode}): ${stderr}`);
  }
  const [rssKb, user, system] = canMeasureRss
    ? (readFileSync(report, 'utf8').trim().split('\n').at(-1) ?? '').split(' ').map(Number)
    : [];
  rmSync(report, { force: true });
  return {
    wallMs,
    peakRssBytes: rssKb === undefined ? null : rssKb * 1024,
    cpuSeconds: user === undefined || system === undefined ? null : user + system,
    stdout: String(result.stdout ?? ''),
  };
}

/** `sh -c script`: for the shell pipelines people actually run (`pg_dump | gzip`). */
export function measureShell(script: string, options: Options = {}): Promise<Measured> {
  return measureCommand('sh', ['-c', script], options);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat; null off Linux. */
export function machineBusySeconds(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return null;
  }
}
