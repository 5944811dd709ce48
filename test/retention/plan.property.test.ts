import dayjs from 'dayjs';
import { describe, expect, it } from 'vitest';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { SAFETY_REASONS } from '../../src/config/schema.ts';
import { type CleanupPlan, type CleanupPolicy, planCleanup } from '../../src/retention/plan.ts';
import { makeEntry } from '../support/entries.ts';
import { prng } from '../support/prng.ts';

const DAY_MS = 86_400_000;
const BASE_MS = Date.parse('2025-01-01T00:00:00.000Z');
const CATALOGS = 4000;

function scenario(seed: number): { entries: BackupEntry[]; policy: CleanupPolicy } {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (probability: number) => random() < probability;
  const count = Math.floor(random() * 26);
  const entries: BackupEntry[] = [];
  for (let index = 0; index < count; index += 1) {
    // Some backups share a second with the previous one, to exercise the id tie-break.
    const createdMs =
      chance(0.1) && entries.length > 0
        ? Date.parse(entries[entries.length - 1]!.created_at)
        : BASE_MS - Math.floor(random() * 400 * DAY_MS);
    const verified = chance(0.7);
    entries.push(
      makeEntry({
        project: pick(['app', 'api']),
        environment: pick(['dev', 'staging', 'production']),
        created_at: new Date(createdMs).toISOString(),
        retention_days: pick([1, 7, 30, 90, 365]),
        label: pick([null, null, 'manual', 'Important', 'nightly', 'pre-migration', 'pre-rollback']),
        reason: pick([null, null, 'pre-migration', 'pre-restore', 'pre-operation', 'scheduled', 'manual']),
        pinned: chance(0.08),
        status: verified ? 'valid' : pick(['valid', 'verification_failed', 'missing']),
        verification: { integrity_check: verified ? 'passed' : pick(['failed', 'not_run', 'passed']) },
      }),
    );
  }
  const policy: CleanupPolicy = {
    now: dayjs(BASE_MS + Math.floor((random() * 430 - 30) * DAY_MS)),
    protectedLabels: ['manual', 'important', 'release'].filter(() => chance(0.6)),
    minKeep: 1 + Math.floor(random() * 4),
  };
  if (chance(0.3)) policy.olderThanDays = Math.floor(random() * 200);
  if (chance(0.2)) policy.environment = pick(['dev', 'staging', 'production']);
  if (chance(0.2)) policy.project = pick(['app', 'api']);
  return { entries, policy };
}

// The oracle restates the cleanup rules (planCleanup's comment, the README's cleanup-backups section)
// independently of the planner's code.
const verified = (entry: BackupEntry) => entry.status === 'valid' && entry.verification.integrity_check === 'passed';
const ageMs = (entry: BackupEntry, policy: CleanupPolicy) => policy.now.valueOf() - Date.parse(entry.created_at);
const due = (entry: BackupEntry, policy: CleanupPolicy) =>
  policy.olderThanDays === undefined
    ? Date.parse(entry.expires_at) <= policy.now.valueOf()
    : ageMs(entry, policy) > policy.olderThanDays * DAY_MS;
const protectedLabel = (entry: BackupEntry, policy: CleanupPolicy) =>
  entry.label !== null && policy.protectedLabels.some((label) => label.toLowerCase() === entry.label!.toLowerCase());
const youngSafety = (entry: BackupEntry, policy: CleanupPolicy) =>
  (SAFETY_REASONS as readonly (string | null)[]).some((reason) => reason === entry.reason || reason === entry.label) &&
  ageMs(entry, policy) < 90 * DAY_MS;
const groupKey = (entry: BackupEntry) => `${entry.project}/${entry.environment}`;
const newerFirst = (a: BackupEntry, b: BackupEntry) =>
  Date.parse(b.created_at) - Date.parse(a.created_at) || (a.backup_id < b.backup_id ? 1 : -1);

function checkInvariants(entries: BackupEntry[], policy: CleanupPolicy, plan: CleanupPlan): void {
  const candidates = entries.filter(
    (entry) =>
      (policy.project === undefined || entry.project === policy.project) &&
      (policy.environment === undefined || entry.environment === policy.environment),
  );
  const deleted = new Set(plan.delete.map((planned) => planned.entry.backup_id));
  const kept = new Map(plan.keep.map((item) => [item.entry.backup_id, item.reason]));

  // A partition of the candidates, and nothing else.
  expect(deleted.size + kept.size).toBe(plan.delete.length + plan.keep.length);
  expect([...deleted, ...kept.keys()].sort()).toEqual(candidates.map((entry) => entry.backup_id).sort());

  for (const { entry } of plan.delete) {
    expect(due(entry, policy)).toBe(true);
    expect(protectedLabel(entry, policy)).toBe(false);
    expect(entry.pinned).toBe(false);
    expect(youngSafety(entry, policy)).toBe(false);
  }
  for (const { entry, reason } of plan.keep) {
    expect(reason === 'not-expired').toBe(!due(entry, policy));
    if (reason === 'protected-label') expect(protectedLabel(entry, policy)).toBe(true);
    if (reason === 'pinned') expect(entry.pinned).toBe(true);
    if (reason === 'young-safety-backup') expect(youngSafety(entry, policy)).toBe(true);
    if (reason === 'newest-verified' || reason === 'min-keep') expect(verified(entry)).toBe(true);
  }

  const groups = new Map<string, BackupEntry[]>();
  for (const entry of candidates) groups.set(groupKey(entry), [...(groups.get(groupKey(entry)) ?? []), entry]);
  for (const group of groups.values()) {
    const verifiedBackups = group.filter(verified).sort(newerFirst);
    const newest = verifiedBackups[0];
    if (newest) expect(deleted.has(newest.backup_id)).toBe(false);
    const verifiedLeft = verifiedBackups.filter((entry) => !deleted.has(entry.backup_id)).length;
    expect(verifiedLeft).toBeGreaterThanOrEqual(Math.min(policy.minKeep, verifiedBackups.length));
    const rescued = group.filter((entry) => kept.get(entry.backup_id) === 'min-keep');
    if (rescued.length > 0) {
      // min_keep keeps no more than it must, and keeps the newest of what it could delete.
      expect(verifiedLeft).toBe(Math.min(policy.minKeep, verifiedBackups.length));
      const oldestRescued = Math.min(...rescued.map((entry) => Date.parse(entry.created_at)));
      for (const entry of verifiedBackups.filter((candidate) => deleted.has(candidate.backup_id))) {
        expect(Date.parse(entry.created_at)).toBeLessThanOrEqual(oldestRescued);
      }
    }
  }
}

describe('planCleanup invariants over random catalogs and clocks', () => {
  it(`holds for ${CATALOGS} seeded catalogs`, () => {
    let deletions = 0;
    let rescues = 0;
    for (let seed = 1; seed <= CATALOGS; seed += 1) {
      const { entries, policy } = scenario(seed);
      const plan = planCleanup(entries, policy);
      try {
        checkInvariants(entries, policy, plan);
        expect(planCleanup([...entries].reverse(), policy)).toEqual(plan);
      } catch (error) {
        throw new Error(`seed ${seed}: ${(error as Error).message}`, { cause: error });
      }
      deletions += plan.delete.length;
      rescues += plan.keep.filter((item) => item.reason === 'min-keep').length;
    }
    // The generator must reach the interesting cases, or the invariants prove little.
    expect(deletions).toBeGreaterThan(CATALOGS);
    expect(rescues).toBeGreaterThan(CATALOGS / 20);
  });
});
