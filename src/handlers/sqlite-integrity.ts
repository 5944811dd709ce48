import { Worker } from 'node:worker_threads';

/**
 * `PRAGMA integrity_check` in a worker thread. node:sqlite is synchronous: on the main thread the
 * check blocks the event loop, so nothing else (the stream through compression and verification)
 * runs meanwhile. In a worker it overlaps with that stream on the second core.
 *
 * The worker starts before the file exists (an isolate takes ~30-40 ms to start, time the backup
 * copy would otherwise wait for) and checks the file it is sent. Its code is inline (eval) so that
 * it runs the same from the sources and from dist/. It closes the database before it reports: the
 * caller may terminate it as soon as the report arrives, and a connection cut off before close()
 * leaves the copy's -wal/-shm files behind.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
parentPort.once('message', ({ filePath, timeoutMs }) => {
  const db = new DatabaseSync(filePath, { timeout: timeoutMs });
  let rows;
  try {
    rows = db.prepare('PRAGMA integrity_check').all().map((row) => String(row.integrity_check));
  } finally {
    db.close();
  }
  parentPort.postMessage(rows);
});
`;

export interface IntegrityCheck {
  /** The check's rows: exactly `['ok']` when the file is intact; the error's message when it could not run. */
  problems: Promise<string[]>;
  /** Stops the check (the backup was cancelled or failed); `problems` then settles. */
  stop(): Promise<void>;
}

export interface IntegrityChecker {
  /** Checks this file (once); call stop() instead when there is nothing to check. */
  check(filePath: string, timeoutMs: number): IntegrityCheck;
  stop(): Promise<void>;
}

export function startIntegrityChecker(): IntegrityChecker {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  const problems = new Promise<string[]>((resolve) => {
    worker.once('message', (rows: string[]) => resolve(rows));
    worker.once('error', (error: Error) => resolve([error.message]));
    worker.once('exit', (code) => resolve([`the integrity check stopped (exit code ${code})`]));
  });
  const stop = async () => {
    await worker.terminate();
    await problems;
  };
  return {
    check(filePath, timeoutMs) {
      worker.postMessage({ filePath, timeoutMs });
      return { problems, stop };
    },
    stop,
  };
}
