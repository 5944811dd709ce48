import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.ts';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { SAFETY_REASONS } from '../../src/config/schema.ts';
import { cleanupBackups } from '../../src/operations/cleanup.ts';
import { makeEntry } from '../support/entries.ts';
import { makeWorkspace } from '../support/workspace.ts';
import { filesUnder } from './support.ts';
import { prng } from '../support/prng.ts';

/**
 * Retention safety through the cleanup-backups operation itself, on real files: random catalogs
 * (ages, labels, pins, verification states, reasons, backups whose file is gone, another project
 * beside this one) and random clocks, policies and options. Whatever the draw, cleanup never
 * deletes a protected-label, pinned or young safety backup, never the newest verified backup of
 * the project and environment, never leaves fewer than min_keep verified backups, never touches
 * another project, deletes the file of every entry it drops, and a dry run changes nothing.
 * (test/retention/plan.property.test.ts checks the planner alone over 4000 catalogs.)
 */

const RUNS = 120;
const DAY_MS = 86_400_000;
const BASE_MS = Date.parse('2025-01-01T00:00:00.000Z');
const PROJECT = 'api';

interface Draw {
  entries: BackupEntry[];
  /** Entries whose backup file is not on disk. */
  missing: Set<string>;
  now: Date;
  protectedLabels: string[];
  minKeep: number;
  environment: string | undefined;
  olderThan: number | undefined;
  yes: boolean;
}

function draw(seed: number): Draw {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (probability: number) => random() < probability;
  const entries: BackupEntry[] = [];
  const missing = new Set<string>();
  for (let index = Math.floor(random() * 18); index > 0; index -= 1) {
    const verified = chance(0.7);
    const entry = makeEntry({
      project: chance(0.8) ? PROJECT : 'web',
      environment: pick(['dev', 'production']),
      created_at: new Date(BASE_MS - Math.floor(random() * 300 * DAY_MS)).toISOString(),
      retention_days: pick([1, 7, 30, 90]),
      label: pick([null, null, 'manual', 'Important', 'nightly', 'pre-migration']),
      reason: pick([null, null, 'pre-migration', 'pre-restore', 'scheduled']),
      pinned: chance(0.1),
      status: verified ? 'valid' : pick(['valid', 'verification_failed']),
      verification: { integrity_check: verified ? 'passed' : pick(['failed', 'passed']) },
    });
    entries.push(entry);
    if (chance(0.08)) missing.add(entry.backup_id);
  }
  return {
    entries,
    missing,
    now: new Date(BASE_MS + Math.floor(random() * 200 * DAY_MS)),
    protectedLabels: ['manual', 'important'].filter(() => chance(0.7)),
    minKeep: 1 + Math.floor(random() * 3),
    environment: pick([undefined, 'dev', 'production']),
    olderThan: chance(0.3) ? Math.floor(random() * 120) : undefined,
    yes: chance(0.85),
  };
}

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
});

async function setUp(scenario: Draw) {
  const workspace = await makeWorkspace({
    database: { provider: 'postgresql' },
    backup: { protected_labels: scenario.protectedLabels, min_keep: scenario.minKeep },
  });
  roots.push(workspace.root);
  for (const entry of scenario.entries) {
    const file = path.join(workspace.root, entry.file_path);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `dump of ${entry.backup_id}\n`);
  }
  const catalog = new Catalog({ backupRoot: workspace.backupRoot, workspaceRoot: workspace.root });
  await catalog.update((entries) => void entries.push(...scenario.entries));
  for (const id of scenario.missing)
    await rm(path.join(workspace.root, scenario.entries.find((entry) => entry.backup_id === id)!.file_path));
  return { workspace, catalog };
}

const isVerified = (entry: BackupEntry, scenario: Draw) =>
  entry.status === 'valid' && entry.verification.integrity_check === 'passed' && !scenario.missing.has(entry.backup_id);
const isYoungSafety = (entry: BackupEntry, now: Date) =>
  (SAFETY_REASONS as readonly (string | null)[]).some((reason) => reason === entry.reason || reason === entry.label) &&
  now.valueOf() - Date.parse(entry.created_at) < 90 * DAY_MS;
const newerFirst = (a: BackupEntry, b: BackupEntry) =>
  Date.parse(b.created_at) - Date.parse(a.created_at) || (a.backup_id < b.backup_id ? 1 : -1);

function checkSurvivors(scenario: Draw, before: BackupEntry[], after: BackupEntry[], files: Set<string>): void {
  const kept = new Set(after.map((entry) => entry.backup_id));
  const inScope = (entry: BackupEntry) =>
    entry.project === PROJECT && (scenario.environment === undefined || entry.environment === scenario.environment);
  for (const entry of before) {
    const stays = kept.has(entry.backup_id);
    if (!inScope(entry)) expect(stays, `${entry.backup_id} of another scope`).toBe(true);
    if (scenario.missing.has(entry.backup_id)) continue;
    const label = entry.label?.toLowerCase();
    if (label && scenario.protectedLabels.includes(label))
      expect(stays, `${entry.backup_id}: protected label`).toBe(true);
    if (entry.pinned) expect(stays, `${entry.backup_id}: pinned`).toBe(true);
    if (isYoungSafety(entry, scenario.now)) expect(stays, `${entry.backup_id}: young safety backup`).toBe(true);
    // An entry the catalog still lists keeps its file; a dropped one loses it.
    expect(files.has(entry.file_path), `${entry.backup_id}: file ${stays ? 'kept' : 'deleted'}`).toBe(stays);
  }
  const groups = new Map<string, BackupEntry[]>();
  for (const entry of before.filter(inScope))
    groups.set(`${entry.environment}`, [...(groups.get(entry.environment) ?? []), entry]);
  for (const group of groups.values()) {
    const verified = group.filter((entry) => isVerified(entry, scenario)).sort(newerFirst);
    if (verified[0]) expect(kept.has(verified[0].backup_id), `${verified[0].backup_id}: newest verified`).toBe(true);
    const left = verified.filter((entry) => kept.has(entry.backup_id)).length;
    expect(left, 'verified backups left').toBeGreaterThanOrEqual(Math.min(scenario.minKeep, verified.length));
  }
}

describe(`cleanup-backups over ${RUNS} random catalogs, clocks and policies`, () => {
  it('never deletes what retention protects; a dry run and a refused confirmation change nothing', async () => {
    let deleted = 0;
    for (let seed = 1; seed <= RUNS; seed += 1) {
      const scenario = draw(seed);
      const { workspace, catalog } = await setUp(scenario);
      const ctx = workspace.ctx({ now: () => scenario.now });
      const options = { environment: scenario.environment, olderThan: scenario.olderThan };
      try {
        const catalogText = await readFile(catalog.catalogPath, 'utf8');
        const filesBefore = await filesUnder(workspace.root);
        expect((await cleanupBackups({ ...options, dryRun: true }, ctx)).status).toBe('success');
        expect(await readFile(catalog.catalogPath, 'utf8')).toBe(catalogText);
        expect(await filesUnder(workspace.root)).toEqual(filesBefore);

        const result = await cleanupBackups({ ...options, yes: scenario.yes }, ctx);
        if (result.status === 'error') {
          // Only a deletion in production without --yes may stop it, and then nothing changed.
          expect(result.error_code, result.error).toBe('CONFIRMATION_REQUIRED');
          expect(scenario.yes).toBe(false);
          expect(await readFile(catalog.catalogPath, 'utf8')).toBe(catalogText);
          expect(await filesUnder(workspace.root)).toEqual(filesBefore);
          continue;
        }
        const after = (await catalog.read()).entries;
        const files = new Set((await filesUnder(workspace.root)).filter((name) => name.endsWith('.sql.zst')));
        checkSurvivors(scenario, scenario.entries, after, files);
        deleted += result.result.deleted.length;
      } catch (error) {
        throw new Error(`seed ${seed}: ${(error as Error).message}`, { cause: error });
      } finally {
        await rm(workspace.root, { recursive: true, force: true });
      }
    }
    // The draws must reach real deletions, or the invariants prove little.
    expect(deleted).toBeGreaterThan(RUNS / 2);
  });
});
