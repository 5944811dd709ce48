import { appendFile } from 'node:fs/promises';
import { humanBytes, humanDuration } from './format.ts';
import type { OperationResult } from './result.ts';
import { asText } from '../util/text.ts';

/**
 * GitHub shows the file named by GITHUB_STEP_SUMMARY as the job's summary: each backup and restore
 * appends a few lines there (project, environment, id, size, duration, verification, how to restore).
 * Built from chosen fields of the result only, which the operations have already redacted.
 */
export async function appendStepSummary(
  result: OperationResult<unknown>,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void,
): Promise<void> {
  const file = env['GITHUB_STEP_SUMMARY'];
  const markdown = file ? stepSummary(result) : undefined;
  if (!file || !markdown) return;
  // The summary is a courtesy: failing to write it must not fail a backup that succeeded.
  await appendFile(file, markdown).catch((error: unknown) =>
    warn(`Could not append to GITHUB_STEP_SUMMARY (${file}): ${(error as Error).message}`),
  );
}

const SUMMARIZED: Readonly<Record<string, string>> = { 'create-backup': 'Backup', restore: 'Restore' };

export function stepSummary(result: OperationResult<unknown>): string | undefined {
  const what = SUMMARIZED[result.operation];
  if (!what) return undefined;
  const heading = `${what} of ${result.project ?? 'the project'}${result.environment ? ` (${result.environment})` : ''}`;
  if (result.status === 'error')
    return `### ❌ ${heading} failed\n\n\`${result.error_code}\`: ${escaped(result.error)}\n\n`;
  const data = result.result as Record<string, unknown>;
  if (data['skipped'] === true) return `### ⏭️ ${heading} skipped\n\n${escaped(asText(data['reason']))}\n\n`;
  const rows = result.operation === 'restore' ? restoreRows(data) : backupRows(data);
  const table = rows.filter(([, value]) => value !== undefined).map(([name, value]) => `| ${name} | ${value} |`);
  return [`### ✅ ${heading}`, '', '| | |', '|---|---|', ...table, '', ''].join('\n');
}

type Row = [string, string | undefined];

function backupRows(data: Record<string, unknown>): Row[] {
  const verification = data['verification'] as { integrity_check?: string } | undefined;
  return [
    ['Backup id', code(data['backup_id'])],
    [
      'Size',
      typeof data['size_bytes'] === 'number'
        ? `${humanBytes(data['size_bytes'])}${data['compression'] ? ` (${asText(data['compression'])})` : ''}`
        : undefined,
    ],
    ['Duration', duration(data['duration_ms'])],
    [
      'Verification',
      verification?.integrity_check ? `checksum and integrity check ${verification.integrity_check}` : undefined,
    ],
    ['Restore with', code(data['restore_command'])],
  ];
}

function restoreRows(data: Record<string, unknown>): Row[] {
  return [
    ['Backup restored', code(data['backup_id'])],
    ['Into', code(data['target'])],
    ['Safety backup', code(data['safety_backup_id'])],
    ['Duration', duration(data['duration_ms'])],
    ['Undo with', code(data['undo_command'])],
  ];
}

function code(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? `\`${value.replaceAll('`', "'")}\`` : undefined;
}

function duration(value: unknown): string | undefined {
  return typeof value === 'number' ? humanDuration(value) : undefined;
}

/** Table cells and headings must stay on one line, and a pipe would end the cell. */
function escaped(text: string): string {
  return text.replace(/\r?\n/g, ' ').replaceAll('|', '\\|');
}
