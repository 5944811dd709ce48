import type { Dayjs } from 'dayjs';
import { compareEntries } from '../catalog/order.ts';
import type { BackupEntry } from '../catalog/schema.ts';
import { isEnvironmentDatabase } from '../catalog/source.ts';
import { SAFETY_BACKUP_MIN_DAYS } from '../config/environment.ts';
import { SAFETY_REASONS } from '../config/schema.ts';

const DAY_MS = 86_400_000;

export interface CleanupPolicy {
  /** The clock: the plan never reads the real time, so the same inputs always give the same plan. */
  now: Dayjs;
  /** Instead of `expires_at`, delete backups created more than this many days before `now`. */
  olderThanDays?: number;
  environment?: string;
  project?: string;
  protectedLabels: readonly string[];
  /** Verified backups that must remain per project and environment. */
  minKeep: number;
}

export type DeletionReason = 'expired' | 'older-than';
export type KeepReason =
  'protected-label' | 'pinned' | 'young-safety-backup' | 'newest-verified' | 'min-keep' | 'not-expired';

export interface PlannedDeletion {
  entry: BackupEntry;
  reason: DeletionReason;
}

export interface KeptEntry {
  entry: BackupEntry;
  reason: KeepReason;
}

export interface CleanupPlan {
  /** Oldest first. */
  delete: PlannedDeletion[];
  /** Every candidate that is not deleted, with the (first) rule that kept it. Oldest first. */
  keep: KeptEntry[];
}

/** A backup that counts towards `min_keep`: intact and checked. */
export function isVerified(entry: BackupEntry): boolean {
  return entry.status === 'valid' && entry.verification.integrity_check === 'passed';
}

export function isSafetyBackup(entry: BackupEntry): boolean {
  const safety: readonly string[] = SAFETY_REASONS;
  return (
    (entry.reason !== null && safety.includes(entry.reason)) || (entry.label !== null && safety.includes(entry.label))
  );
}

/**
 * Decides which backups `cleanup-backups` deletes. Candidates are the entries of the
 * selected project/environment; a candidate is due when past `expires_at` (or older than
 * `olderThanDays`), and a due candidate is still kept when its label is protected, it is pinned,
 * it is a safety backup younger than 90 days, it is the newest verified backup of its project and
 * environment, or deleting it would leave fewer than `minKeep` verified backups there.
 */
export function planCleanup(entries: readonly BackupEntry[], policy: CleanupPolicy): CleanupPlan {
  const plan: CleanupPlan = { delete: [], keep: [] };
  for (const group of groupByProjectAndEnvironment(entries.filter((entry) => isCandidate(entry, policy)))) {
    planGroup(group, policy, plan);
  }
  plan.delete.sort((a, b) => compareEntries(a.entry, b.entry));
  plan.keep.sort((a, b) => compareEntries(a.entry, b.entry));
  return plan;
}

/**
 * A verified backup of the environment's own database: what the newest-verified floor and min_keep
 * protect. A safety backup of another database filed under the environment does not count.
 */
function isVerifiedOwn(entry: BackupEntry): boolean {
  return isVerified(entry) && isEnvironmentDatabase(entry);
}

/** One project+environment: every entry of it, newest first. */
function planGroup(newestFirst: BackupEntry[], policy: CleanupPolicy, plan: CleanupPlan): void {
  const newestVerified = newestFirst.find(isVerifiedOwn);
  const due: BackupEntry[] = [];
  let verifiedLeft = 0;
  for (const entry of newestFirst) {
    const reason = exemption(entry, policy, entry === newestVerified);
    if (reason === undefined) {
      due.push(entry);
    } else {
      plan.keep.push({ entry, reason });
      if (isVerifiedOwn(entry)) verifiedLeft += 1;
    }
  }
  const deletionReason: DeletionReason = policy.olderThanDays === undefined ? 'expired' : 'older-than';
  // `due` is newest first, so min_keep keeps the most recent of the verified backups it rescues.
  for (const entry of due) {
    if (isVerifiedOwn(entry) && verifiedLeft < policy.minKeep) {
      plan.keep.push({ entry, reason: 'min-keep' });
      verifiedLeft += 1;
    } else {
      plan.delete.push({ entry, reason: deletionReason });
    }
  }
}

/** Why an entry must stay regardless of min_keep, or undefined when it may go. */
function exemption(entry: BackupEntry, policy: CleanupPolicy, isNewestVerified: boolean): KeepReason | undefined {
  const nowMs = policy.now.valueOf();
  if (!isDue(entry, policy, nowMs)) return 'not-expired';
  if (hasProtectedLabel(entry, policy.protectedLabels)) return 'protected-label';
  if (entry.pinned) return 'pinned';
  if (isSafetyBackup(entry) && nowMs - Date.parse(entry.created_at) < SAFETY_BACKUP_MIN_DAYS * DAY_MS) {
    return 'young-safety-backup';
  }
  if (isNewestVerified) return 'newest-verified';
  return undefined;
}

function isDue(entry: BackupEntry, policy: CleanupPolicy, nowMs: number): boolean {
  if (policy.olderThanDays !== undefined) return nowMs - Date.parse(entry.created_at) > policy.olderThanDays * DAY_MS;
  return Date.parse(entry.expires_at) <= nowMs;
}

/** Labels are stored slugged (lower case); config may spell a protected label with capitals. */
function hasProtectedLabel(entry: BackupEntry, protectedLabels: readonly string[]): boolean {
  if (entry.label === null) return false;
  const label = entry.label.toLowerCase();
  return protectedLabels.some((protectedLabel) => protectedLabel.toLowerCase() === label);
}

function isCandidate(entry: BackupEntry, policy: CleanupPolicy): boolean {
  return (
    (policy.project === undefined || entry.project === policy.project) &&
    (policy.environment === undefined || entry.environment === policy.environment)
  );
}

function groupByProjectAndEnvironment(entries: BackupEntry[]): BackupEntry[][] {
  const groups = new Map<string, BackupEntry[]>();
  for (const entry of entries) {
    const key = JSON.stringify([entry.project, entry.environment]);
    const group = groups.get(key);
    if (group) group.push(entry);
    else groups.set(key, [entry]);
  }
  return [...groups.values()].map((group) => group.sort((a, b) => compareEntries(b, a)));
}
