/**
 * Runs one operation of the programmatic API in its own process and reports, as one line of
 * JSON, how long the call took and the process's peak RSS. Plain JavaScript importing the
 * compiled package (dist/), as a program using @faber-db/nx would: a .ts file here would load
 * Node's type stripper and add ~20 MB to the RSS that users never pay.
 *
 *   node bench/operation-child.mjs '{"operation":"backup","workspaceRoot":...,"projectName":...,"options":{...}}'
 */
import { readFileSync } from 'node:fs';
import {
  cleanupBackups,
  createBackup,
  listBackups,
  restoreBackup,
  silentReporter,
  verifyBackup,
} from '../dist/src/index.js';

const OPERATIONS = {
  backup: createBackup,
  restore: restoreBackup,
  verify: verifyBackup,
  list: listBackups,
  cleanup: cleanupBackups,
};

/** The result without long lists (a list of 10 000 backups is not what the parent wants back). */
function summary(result) {
  if (result.status !== 'success') return { status: result.status, error_code: result.error_code, error: result.error };
  const data = { ...result.result };
  for (const [key, value] of Object.entries(data))
    if (Array.isArray(value) && value.length > 20) data[key] = `${value.length} items`;
  return { status: result.status, result: data };
}

/** CPU seconds of the children this process waited for (the dump tool): /proc/self/stat cutime + cstime. */
function childCpuSeconds() {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return null;
  }
}

/**
 * This process's own peak RSS (VmHWM). getrusage's maxRSS is not: on Linux a child spawned from a
 * large process starts with that process's high-water mark (kept across exec), so every case after
 * the bench process itself grew (its in-process S3 server) read the bench's size, not its own.
 */
function peakRssBytes() {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

/**
 * A reporter that only notes when a backup reaches each step, for the bench's "where the fixed time
 * goes" table: the call → the dump tool's start → its first bytes → the file written and checked in
 * the same pass → the stored file re-read and verified → the catalog entry written (the end).
 */
function timingReporter() {
  const marks = {};
  const mark = (name) => {
    marks[name] ??= performance.now();
  };
  const reporter = {
    ...silentReporter(),
    step(message) {
      if (message.startsWith('Creating backup')) mark('dumpStart');
      else if (message.startsWith('Backup file created')) mark('written');
      else if (message.startsWith('Recording metadata')) mark('verified');
    },
    progress() {
      mark('firstBytes');
    },
  };
  return { reporter, marks };
}

/** Milliseconds between the marks; null unless the operation passed every one (a backup). */
function phases(marks, startedAt, endedAt) {
  const order = ['dumpStart', 'firstBytes', 'written', 'verified'];
  if (!order.every((name) => marks[name] !== undefined)) return null;
  return {
    beforeDumpMs: Math.round(marks.dumpStart - startedAt),
    firstBytesMs: Math.round(marks.firstBytes - marks.dumpStart),
    dumpMs: Math.round(marks.written - marks.firstBytes),
    rereadMs: Math.round(marks.verified - marks.written),
    recordMs: Math.round(endedAt - marks.verified),
  };
}

const request = JSON.parse(process.argv[2] ?? '{}');
const operation = OPERATIONS[request.operation];
if (!operation) throw new Error(`unknown operation ${request.operation}`);
const timing = timingReporter();
const context = {
  workspaceRoot: request.workspaceRoot,
  projectName: request.projectName,
  projectRoot: request.projectRoot,
  env: process.env,
  reporter: timing.reporter,
  interactive: false,
};
const started = performance.now();
const result = await operation(request.options ?? {}, context);
const ended = performance.now();
const durationMs = ended - started;
const usage = process.resourceUsage();
process.stdout.write(
  `${JSON.stringify({
    durationMs,
    processMs: performance.now(),
    maxRssBytes: peakRssBytes() ?? usage.maxRSS * 1024,
    cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
    childCpuSeconds: childCpuSeconds(),
    phasesMs: phases(timing.marks, started, ended),
    result: summary(result),
  })}\n`,
);
process.exitCode = result.status === 'success' ? 0 : 1;
