import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FaberError } from '../../src/output/errors.ts';
import { failure, success } from '../../src/output/result.ts';
import { appendStepSummary, stepSummary } from '../../src/output/step-summary.ts';

const scope = { operation: 'create-backup', project: 'billing', environment: 'production' };

describe('GitHub job summary', () => {
  it('a backup: id, size, duration, verification and the restore command', () => {
    const markdown = stepSummary(
      success(
        scope,
        {
          backup_id: 'backup-20260101-120000',
          size_bytes: 2048,
          compression: 'zstd',
          duration_ms: 1500,
          verification: { integrity_check: 'passed', file_readable: true },
          restore_command: 'nx run billing:restore:production --from=backup-20260101-120000',
        },
        'ok',
      ),
    );

    expect(markdown).toBe(
      [
        '### ✅ Backup of billing (production)',
        '',
        '| | |',
        '|---|---|',
        '| Backup id | `backup-20260101-120000` |',
        '| Size | 2.0 KB (zstd) |',
        '| Duration | 1.5 s |',
        '| Verification | checksum and integrity check passed |',
        '| Restore with | `nx run billing:restore:production --from=backup-20260101-120000` |',
        '',
        '',
      ].join('\n'),
    );
  });

  it('a failure: the error code and the message on one line', () => {
    const markdown = stepSummary(
      failure(scope, new FaberError('CONNECTION_FAILED', 'cannot reach db.example:5432\nconnection refused | retry')),
    );

    expect(markdown).toBe(
      '### ❌ Backup of billing (production) failed\n\n`CONNECTION_FAILED`: cannot reach db.example:5432 connection refused \\| retry\n\n',
    );
  });

  it('nothing for operations other than backup and restore', () => {
    expect(stepSummary(success({ ...scope, operation: 'list-backups' }, { backups: [] }, 'ok'))).toBeUndefined();
  });

  it('appends to the file GITHUB_STEP_SUMMARY names, and only warns when it cannot', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'faber-summary-'));
    const warnings: string[] = [];
    const result = success(
      { ...scope, operation: 'restore' },
      { backup_id: 'backup-20260101-120000', duration_ms: 10 },
      'ok',
    );
    try {
      await appendStepSummary(result, { GITHUB_STEP_SUMMARY: path.join(directory, 'summary.md') }, (message) =>
        warnings.push(message),
      );
      await appendStepSummary(
        result,
        { GITHUB_STEP_SUMMARY: path.join(directory, 'missing', 'summary.md') },
        (message) => warnings.push(message),
      );

      expect(await readFile(path.join(directory, 'summary.md'), 'utf8')).toContain(
        '| Backup restored | `backup-20260101-120000` |',
      );
      expect(warnings).toEqual([expect.stringMatching(/^Could not append to GITHUB_STEP_SUMMARY/)]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
