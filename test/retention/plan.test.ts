import dayjs from 'dayjs';
import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { type CleanupPolicy, type KeepReason, planCleanup } from '../../src/retention/plan.ts';
import { type EntryOverrides, makeEntry } from '../support/entries.ts';

const NOW = dayjs('2025-06-01T12:00:00.000Z');
const DAY_MS = 86_400_000;

function daysAgo(days: number): string {
  return new Date(NOW.valueOf() - days * DAY_MS).toISOString();
}

/** A backup `age` days old that expired `age - retention` days ago (retention 7 unless given). */
function backup(age: number, overrides: EntryOverrides = {}): BackupEntry {
  return makeEntry({ created_at: daysAgo(age), retention_days: 7, ...overrides });
}

const unverified: EntryOverrides = { status: 'verification_failed', verification: { integrity_check: 'failed' } };

function policy(overrides: Partial<CleanupPolicy> = {}): CleanupPolicy {
  return { now: NOW, protectedLabels: ['manual', 'important'], minKeep: 1, ...overrides };
}

interface Outcome {
  deleted: string[];
  kept: Record<string, KeepReason>;
}

function outcome(entries: BackupEntry[], overrides: Partial<CleanupPolicy> = {}): Outcome {
  const plan = planCleanup(entries, policy(overrides));
  return {
    deleted: plan.delete.map((planned) => planned.entry.backup_id),
    kept: Object.fromEntries(plan.keep.map((kept) => [kept.entry.backup_id, kept.reason])),
  };
}

describe('planCleanup: one rule at a time', () => {
  // `fresh` is a recent verified backup, so that the newest-verified and min_keep rules stay out of
  // the way of the rule each row is about.
  const cases: Array<{
    name: string;
    build: () => { fresh?: BackupEntry; subject: BackupEntry };
    policy?: Partial<CleanupPolicy>;
    expected: KeepReason | 'deleted';
  }> = [
    {
      name: 'an expired backup is deleted',
      build: () => ({ fresh: backup(1), subject: backup(30) }),
      expected: 'deleted',
    },
    {
      name: 'a backup before its expires_at is kept',
      build: () => ({ fresh: backup(1), subject: backup(3) }),
      expected: 'not-expired',
    },
    {
      name: 'a backup is due at the very instant it expires',
      build: () => ({ fresh: backup(1), subject: backup(7) }),
      expected: 'deleted',
    },
    {
      name: 'a protected label keeps an expired backup',
      build: () => ({ fresh: backup(1), subject: backup(300, { label: 'manual' }) }),
      expected: 'protected-label',
    },
    {
      name: 'protected labels match whatever the case in the config',
      build: () => ({ fresh: backup(1), subject: backup(300, { label: 'important' }) }),
      policy: { protectedLabels: ['Important'] },
      expected: 'protected-label',
    },
    {
      name: 'a label that is not protected does not keep a backup',
      build: () => ({ fresh: backup(1), subject: backup(300, { label: 'nightly' }) }),
      expected: 'deleted',
    },
    {
      name: 'a pinned backup is kept',
      build: () => ({ fresh: backup(1), subject: backup(300, { pinned: true }) }),
      expected: 'pinned',
    },
    {
      name: 'a pre-migration safety backup younger than 90 days is kept',
      build: () => ({ fresh: backup(1), subject: backup(89, { reason: 'pre-migration' }) }),
      expected: 'young-safety-backup',
    },
    {
      name: 'a safety backup is recognised by its label too',
      build: () => ({ fresh: backup(1), subject: backup(30, { label: 'pre-rollback' }) }),
      expected: 'young-safety-backup',
    },
    {
      name: 'pre-restore is a safety reason',
      build: () => ({ fresh: backup(1), subject: backup(30, { reason: 'pre-restore' }) }),
      expected: 'young-safety-backup',
    },
    {
      name: 'pre-operation is a safety reason',
      build: () => ({ fresh: backup(1), subject: backup(30, { reason: 'pre-operation' }) }),
      expected: 'young-safety-backup',
    },
    {
      name: 'a safety backup 90 days old is no longer exempt',
      build: () => ({ fresh: backup(1), subject: backup(90, { reason: 'pre-operation' }) }),
      expected: 'deleted',
    },
    {
      name: 'another reason does not make a safety backup',
      build: () => ({ fresh: backup(1), subject: backup(30, { reason: 'scheduled' }) }),
      expected: 'deleted',
    },
    {
      name: 'the newest verified backup is kept even when expired',
      build: () => ({ subject: backup(30) }),
      expected: 'newest-verified',
    },
    {
      name: 'a newer unverified backup does not replace the newest verified one',
      build: () => ({ fresh: backup(3, unverified), subject: backup(30) }),
      expected: 'newest-verified',
    },
    {
      name: 'an expired unverified backup is deleted even when it is the only one',
      build: () => ({ subject: backup(30, unverified) }),
      expected: 'deleted',
    },
    {
      name: 'a backup whose file is missing does not count as verified',
      build: () => ({ subject: backup(30, { status: 'missing' }) }),
      expected: 'deleted',
    },
    {
      name: 'olderThanDays deletes a backup that has not expired yet',
      build: () => ({ fresh: backup(1), subject: backup(40, { retention_days: 365 }) }),
      policy: { olderThanDays: 30 },
      expected: 'deleted',
    },
    {
      name: 'olderThanDays keeps an expired backup younger than the limit',
      build: () => ({ fresh: backup(1), subject: backup(20) }),
      policy: { olderThanDays: 30 },
      expected: 'not-expired',
    },
  ];

  it.each(cases)('$name', ({ build, policy: overrides, expected }) => {
    const { fresh, subject } = build();
    const result = outcome(fresh ? [fresh, subject] : [subject], overrides);
    if (expected === 'deleted') {
      expect(result.deleted).toEqual([subject.backup_id]);
    } else {
      expect(result.deleted).toEqual([]);
      expect(result.kept[subject.backup_id]).toBe(expected);
    }
  });

  it('names the rule that made a backup due', () => {
    const old = backup(40, { retention_days: 365 });
    expect(planCleanup([backup(1), backup(30)], policy()).delete[0]?.reason).toBe('expired');
    expect(planCleanup([backup(1), old], policy({ olderThanDays: 30 })).delete[0]?.reason).toBe('older-than');
  });
});

describe('planCleanup: min_keep', () => {
  it('keeps the most recent expired verified backups until min_keep are left', () => {
    const [a, b, c, d, e] = [50, 40, 30, 20, 10].map((age) => backup(age));
    const result = outcome([a!, b!, c!, d!, e!], { minKeep: 3 });
    expect(result.deleted).toEqual([a!.backup_id, b!.backup_id]);
    expect(result.kept).toEqual({
      [c!.backup_id]: 'min-keep',
      [d!.backup_id]: 'min-keep',
      [e!.backup_id]: 'newest-verified',
    });
  });

  it('counts verified backups that are kept anyway (not expired, pinned) towards min_keep', () => {
    const fresh = backup(1);
    const pinned = backup(60, { pinned: true });
    const expired = [40, 30, 20].map((age) => backup(age));
    const result = outcome([fresh, pinned, ...expired], { minKeep: 3 });
    expect(result.kept[expired[2]!.backup_id]).toBe('min-keep');
    expect(result.deleted).toEqual([expired[0]!.backup_id, expired[1]!.backup_id]);
  });

  it('does not count unverified backups', () => {
    const recentFailed = backup(1, unverified);
    const older = backup(30);
    const newer = backup(20);
    const result = outcome([recentFailed, older, newer], { minKeep: 2 });
    expect(result.kept).toEqual({
      [recentFailed.backup_id]: 'not-expired',
      [newer.backup_id]: 'newest-verified',
      [older.backup_id]: 'min-keep',
    });
  });

  it('applies per project and environment', () => {
    const appProduction = [30, 20].map((age) => backup(age));
    const appStaging = [30, 20].map((age) => backup(age, { environment: 'staging' }));
    const apiProduction = [30, 20].map((age) => backup(age, { project: 'api' }));
    const result = outcome([...appProduction, ...appStaging, ...apiProduction], { minKeep: 1 });
    expect(result.deleted.sort()).toEqual(
      [appProduction[0]!, appStaging[0]!, apiProduction[0]!].map((e) => e.backup_id).sort(),
    );
  });

  it('keeps every verified backup when there are fewer than min_keep', () => {
    const entries = [30, 20].map((age) => backup(age));
    expect(outcome(entries, { minKeep: 5 }).deleted).toEqual([]);
  });
});

describe('planCleanup: selection and determinism', () => {
  it('only plans for the selected environment and project', () => {
    const chosen = backup(30, { environment: 'staging' });
    const otherEnvironment = backup(30, { environment: 'dev' });
    const otherProject = backup(30, { project: 'api', environment: 'staging' });
    const plan = planCleanup(
      [backup(1, { environment: 'staging' }), chosen, otherEnvironment, otherProject],
      policy({ environment: 'staging', project: 'app' }),
    );
    expect(plan.delete.map((planned) => planned.entry.backup_id)).toEqual([chosen.backup_id]);
    const planned = [...plan.delete, ...plan.keep].map((item) => item.entry.backup_id);
    expect(planned).not.toContain(otherEnvironment.backup_id);
    expect(planned).not.toContain(otherProject.backup_id);
  });

  it('gives the same plan whatever the order of the catalog', () => {
    const entries = [1, 5, 10, 20, 20, 30, 100].map((age, index) => backup(age, { pinned: index === 3 }));
    const forward = planCleanup(entries, policy({ minKeep: 2 }));
    const backward = planCleanup([...entries].reverse(), policy({ minKeep: 2 }));
    expect(backward).toEqual(forward);
  });

  it('does not change the entries it is given', () => {
    const entries = [backup(30), backup(20)];
    const copy = structuredClone(entries);
    planCleanup(entries, policy());
    expect(entries).toEqual(copy);
  });
});

describe('planCleanup: only backups of the environment’s own database are its floor', () => {
  const otherDatabase: EntryOverrides = {
    database_name: 'scratch_copy',
    source: { engine: 'postgresql', host: 'db', port: 5432, database: 'scratch_copy', environment_database: false },
  };
  const ownDatabase: EntryOverrides = {
    source: { engine: 'postgresql', host: 'db', port: 5432, database: 'app', environment_database: true },
  };

  it('a newer verified backup of another database does not make the own one deletable', () => {
    const own = backup(30, ownDatabase);
    const other = backup(20, otherDatabase);
    expect(outcome([own, other])).toEqual({ deleted: [other.backup_id], kept: { [own.backup_id]: 'newest-verified' } });
  });

  it('min_keep counts only backups of the own database', () => {
    const older = backup(40, ownDatabase);
    const own = backup(30, ownDatabase);
    const other = backup(20, otherDatabase);
    expect(outcome([older, own, other], { minKeep: 2 })).toEqual({
      deleted: [other.backup_id],
      kept: { [older.backup_id]: 'min-keep', [own.backup_id]: 'newest-verified' },
    });
  });

  it('entries without a recorded source (older catalogs) count as the own database', () => {
    const old = backup(30);
    const newer = backup(20);
    expect(outcome([old, newer])).toEqual({ deleted: [old.backup_id], kept: { [newer.backup_id]: 'newest-verified' } });
  });
});
