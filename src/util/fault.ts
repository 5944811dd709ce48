/**
 * Named crash points for the reliability tests (test/reliability): they prove that a backup
 * process killed at any moment leaves a catalog that parses and lists no incomplete backup.
 *
 * Test-only and inert in normal use: unless the environment variable FABER_DB_FAULT names the
 * point, each call is one environment lookup and a comparison. Set FABER_DB_FAULT=<name> and the
 * process kills itself with SIGKILL there, like `kill -9` or a power cut: no finally block, no
 * exit handler, no buffered write gets to run.
 *
 * `faultPointPast` names a point on a byte stream: FABER_DB_FAULT=<name>@<bytes> kills the process
 * the first time the stream has carried at least <bytes> bytes.
 */
export const FAULT_ENV = 'FABER_DB_FAULT';

export function faultPoint(name: string): void {
  if (process.env[FAULT_ENV] === name) crash();
}

export function faultPointPast(name: string, bytes: number): void {
  const wanted = process.env[FAULT_ENV];
  if (wanted === undefined || !wanted.startsWith(`${name}@`)) return;
  if (bytes >= Number(wanted.slice(name.length + 1))) crash();
}

function crash(): void {
  process.kill(process.pid, 'SIGKILL');
}
