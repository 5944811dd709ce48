import { humanBytes } from './format.ts';

const RULE = '───────────────────────────────────────';

export interface ProgressUpdate {
  bytes: number;
  /** Expected total, when known (an estimate: shown as ~%). */
  expectedBytes?: number;
  elapsedMs: number;
  /** What the bytes are: 'dumped' (default) or 'loaded'. */
  action?: 'dumped' | 'loaded';
}

/**
 * Human output: the original's banners and step lines. A JSON-mode reporter prints nothing, so
 * that `--json` output is the result object alone.
 */
export interface Reporter {
  start(title: string, fields: Record<string, string | undefined>): void;
  step(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  progress(update: ProgressUpdate): void;
  complete(title: string, fields: Record<string, string | undefined>, footer?: string[]): void;
  /** `code` is the stable error_code: the README's troubleshooting table is keyed by it. */
  fail(title: string, message: string, suggestions: string[], code?: string): void;
}

export interface ReporterOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  /** Redraw progress in place (TTY) instead of throttled log lines. */
  interactive: boolean;
  progressIntervalMs?: number;
}

export function silentReporter(): Reporter {
  const nothing = () => undefined;
  return {
    start: nothing,
    step: nothing,
    info: nothing,
    warn: nothing,
    progress: nothing,
    complete: nothing,
    fail: nothing,
  };
}

export function consoleReporter(options: ReporterOptions): Reporter {
  const { out, interactive } = options;
  const interval = options.progressIntervalMs ?? (interactive ? 200 : 5000);
  let lastProgressAt = 0;
  let progressShown = false;

  const write = (text: string) => {
    if (progressShown && interactive) {
      out.write('\r\x1b[2K');
      progressShown = false;
    }
    out.write(`${text}\n`);
  };
  const block = (fields: Record<string, string | undefined>) => {
    for (const [key, value] of Object.entries(fields))
      if (value !== undefined && value !== '') write(`${key}: ${value}`);
  };

  return {
    start(title, fields) {
      write(`🎯 STARTING: ${title}`);
      block(fields);
      write(RULE);
    },
    step: (message) => write(`✓ ${message}`),
    info: (message) => write(`  ${message}`),
    warn: (message) => write(`⚠ ${message}`),
    progress(update) {
      const now = Date.now();
      if (now - lastProgressAt < interval) return;
      lastProgressAt = now;
      const line = progressLine(update);
      if (interactive) {
        out.write(`\r\x1b[2K${line}`);
        progressShown = true;
      } else {
        write(line);
      }
    },
    complete(title, fields, footer = []) {
      write(`✅ COMPLETED: ${title}`);
      block(fields);
      write(RULE);
      for (const line of footer) write(line);
    },
    fail(title, message, suggestions, code) {
      write(`❌ FAILED: ${title}`);
      write(`Error${code ? ` [${code}]` : ''}: ${message}`);
      if (suggestions.length) {
        write('Recovery suggestions:');
        for (const suggestion of suggestions) write(`  • ${suggestion}`);
      }
      write(RULE);
    },
  };
}

function progressLine({ bytes, expectedBytes, elapsedMs, action = 'dumped' }: ProgressUpdate): string {
  const rate = elapsedMs > 0 ? (bytes / elapsedMs) * 1000 : 0;
  const parts = [`  … ${humanBytes(bytes)} ${action}`, `${humanBytes(rate)}/s`];
  if (expectedBytes && expectedBytes > 0) parts.push(`~${Math.min(99, Math.round((bytes / expectedBytes) * 100))}%`);
  return parts.join(', ');
}
