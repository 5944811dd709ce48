import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningChild {
  process: ChildProcess;
  done: Promise<ChildResult>;
  /** Resolves when the child has printed `text` on stdout. */
  printed(text: string): Promise<void>;
}

/**
 * Runs one of the fixture scripts in its own Node process (Node 24 runs the .ts directly), so the
 * tests exercise real cross-process locking. `shellPrefix` runs it through `sh -c` (e.g. `ulimit`).
 */
export function runFixture(script: string, args: string[], shellPrefix?: string): RunningChild {
  const scriptPath = path.join(__dirname, 'fixtures', script);
  const nodeArgs = ['--disable-warning=MODULE_TYPELESS_PACKAGE_JSON', scriptPath, ...args];
  const child =
    shellPrefix === undefined
      ? spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('sh', ['-c', `${shellPrefix}; exec "$0" "$@"`, process.execPath, ...nodeArgs], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const waiter of waiters.filter((candidate) => stdout.includes(candidate.text))) waiter.resolve();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<ChildResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const printed = (text: string) =>
    new Promise<void>((resolve, reject) => {
      if (stdout.includes(text)) return resolve();
      waiters.push({ text, resolve });
      done.then((result) => reject(new Error(`the child exited before printing "${text}": ${result.stderr}`)), reject);
    });
  return { process: child, done, printed };
}

/** The pid of a process that has certainly exited. */
export async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('close', resolve));
  return child.pid!;
}
