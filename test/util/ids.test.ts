import { describe, expect, it } from 'vitest';
import { backupEntrySchema } from '../../src/catalog/schema.ts';
import { assertBackupId, backupId, slugLabel } from '../../src/util/ids.ts';

describe('backup ids', () => {
  const at = new Date('2025-01-24T14:00:00.123Z');

  it('follow backup-YYYYMMDD-HHMMSS[-label] in UTC', () => {
    expect(backupId(at)).toBe('backup-20250124-140000');
    expect(backupId(at, 'pre-v2-migration')).toBe('backup-20250124-140000-pre-v2-migration');
    expect(backupId(new Date('2025-12-31T23:59:59+02:00'))).toBe('backup-20251231-215959');
  });

  it.each([
    ['Pre V2 Migration!', 'pre-v2-migration'],
    ['../../etc/passwd', 'etc-passwd'],
    ['Crème brûlée', 'creme-brulee'],
    ['  --weird__label--  ', 'weird-label'],
    ['a/b\\c', 'a-b-c'],
  ])('slug %j as %j', (label, slug) => {
    expect(slugLabel(label)).toBe(slug);
  });

  it('refuses labels with nothing to keep', () => {
    for (const label of ['', '   ', '///', '🙂'])
      expect(() => slugLabel(label)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });

  it('caps label length so ids stay usable as file names', () => {
    expect(slugLabel('x'.repeat(500)).length).toBe(64);
  });

  it('rejects ids that could name another path', () => {
    expect(assertBackupId('backup-20250124-140000-pre-migration')).toBe('backup-20250124-140000-pre-migration');
    for (const bad of [
      '../backups.json',
      'backup-20250124-140000/../../x',
      'backup-2025',
      'backup-20250124-140000-A',
    ]) {
      expect(() => assertBackupId(bad)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
  });

  it('are the same for the catalog schema as for id options', () => {
    const idSchema = backupEntrySchema.shape.backup_id;
    const ids = [
      'backup-20250124-140000',
      'backup-20250124-140000-pre-v2',
      'backup-20250124-140000-x-',
      'backup-20250124-140000--x',
      'backup-20250124-140000-A',
      'backup-2025',
    ];
    for (const id of ids) {
      const optionAccepts = (() => {
        try {
          return assertBackupId(id) === id;
        } catch {
          return false;
        }
      })();
      expect(idSchema.safeParse(id).success, id).toBe(optionAccepts);
    }
    expect(ids.filter((id) => idSchema.safeParse(id).success)).toEqual([
      'backup-20250124-140000',
      'backup-20250124-140000-pre-v2',
    ]);
  });
});
