import { Worker } from 'node:worker_threads';

/**
 * `PRAGMA integrity_check` in a worker thread. node:sqlite is synchronous: on the main thread the
 * check blocks the event loop, so nothing else (the stream through compression and verification)
 * runs meanwhile. In a worker it overlaps with that stream on the second core.
 *
 * The worker's code is inline (eval) so that it runs the same from the sources and from dist/.
 * It closes the database before it reports: the caller may terminate it as soon as the report
 * arrives, and a connection cut off before close() leaves the copy's -wal/-shm files behind.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.filePath, { timeout: workerData.timeoutMs });
let rows;
try {
  rows = db.prepare('PRAGMA integrity_check').all().map((row) => String(row.integrity_check));
} finally {
  db.close();
}
parentPort.postMessage(rows);
`;

export interface IntegrityCheck {
  /** The check's rows: exactly `['ok']` when the file is intact; the error's message when it could not run. */
  problems: Promise<string[]>;
  /** Stops the check (the backup was cancelled or failed); `problems` then settles. */
  stop(): Promise<void>;
}

export function startIntegrityCheck(filePath: string, timeoutMs: number): IntegrityCheck {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { filePath, timeoutMs } });
  const problems = new Promise<string[]>((resolve) => {
    worker.once('message', (rows: string[]) => resolve(rows));
    worker.once('error', (error: Error) => resolve([error.message]));
    worker.once('exit', (code) => resolve([`the integrity check stopped (exit code ${code})`]));
  });
  return {
    problems,
    stop: async () => {
      await worker.terminate();
      await problems;
    },
  };
}
