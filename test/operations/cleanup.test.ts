import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import dayjs from 'dayjs';
import { describe, expect, it } from 'vitest';
import { writeManifest } from '../../src/catalog/manifest.ts';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import {
  cleanupBackups,
  commitCleanup,
  type CleanupBackupsOptions,
  type CleanupResultData,
} from '../../src/operations/cleanup.ts';
import { listBackups } from '../../src/operations/list.ts';
import type { OperationResult } from '../../src/output/result.ts';
import { makeEntry, type EntryOverrides } from '../support/entries.ts';
import { makeWorkspace, type TestWorkspace } from '../support/workspace.ts';
import { age, createFiles, filePathOf, writeCatalog } from './catalog-fixture.ts';

const NOW = new Date('2025-06-01T00:00:00.000Z');
const now = () => NOW;
const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

function data(result: OperationResult<CleanupResultData>): CleanupResultData {
  if (result.status !== 'success') throw new Error(`${result.error_code}: ${result.error}`);
  return result.result;
}

async function workspaceFor(minKeep = 1): Promise<TestWorkspace> {
  return makeWorkspace({ database: { provider: 'sqlite' }, backup: { min_keep: minKeep } });
}

const ids = async (workspace: TestWorkspace) =>
  (await workspace.catalog.read()).entries.map((entry) => entry.backup_id);

interface Row {
  rule: string;
  entries: EntryOverrides[];
  /** Indexes into `entries` whose file does not exist. */
  withoutFile?: number[];
  options?: CleanupBackupsOptions;
  minKeep?: number;
  deleted: number[];
  kept: Record<number, string>;
}

const day = (iso: string, retentionDays = 30): EntryOverrides => ({
  created_at: `${iso}T00:00:00.000Z`,
  retention_days: retentionDays,
});

/** One row per rule of src/retention/plan.ts, run through the operation on a real catalog and files. */
const ROWS: Row[] = [
  {
    rule: 'an expired backup goes; one that has not expired stays',
    entries: [day('2025-01-01'), day('2025-05-30')],
    deleted: [0],
    kept: { 1: 'not-expired' },
  },
  {
    rule: 'a protected label keeps an expired backup',
    entries: [{ ...day('2025-01-01'), label: 'manual' }, day('2025-05-30')],
    deleted: [],
    kept: { 0: 'protected-label' },
  },
  {
    rule: 'a pinned backup stays',
    entries: [{ ...day('2025-01-01'), pinned: true }, day('2025-05-30')],
    deleted: [],
    kept: { 0: 'pinned' },
  },
  {
    rule: 'a safety backup younger than 90 days stays past its expiry',
    entries: [{ ...day('2025-04-01'), reason: 'pre-migration' }, day('2025-05-30')],
    deleted: [],
    kept: { 0: 'young-safety-backup' },
  },
  {
    rule: 'a safety backup older than 90 days goes',
    entries: [{ ...day('2025-01-01'), reason: 'pre-restore', label: 'pre-restore' }, day('2025-05-30')],
    deleted: [0],
    kept: {},
  },
  {
    rule: 'the newest verified backup stays even when expired',
    entries: [day('2025-01-01'), day('2025-02-01')],
    deleted: [0],
    kept: { 1: 'newest-verified' },
  },
  {
    rule: 'min_keep keeps that many verified backups',
    minKeep: 2,
    entries: [day('2025-01-01'), day('2025-02-01'), day('2025-03-01')],
    deleted: [0],
    kept: { 1: 'min-keep', 2: 'newest-verified' },
  },
  {
    rule: 'a failed backup does not count as verified',
    entries: [day('2025-01-01'), { ...day('2025-02-01'), status: 'verification_failed' }],
    deleted: [1],
    kept: { 0: 'newest-verified' },
  },
  {
    rule: 'a backup whose file is gone does not count as verified',
    entries: [day('2025-01-01'), day('2025-02-01')],
    withoutFile: [1],
    deleted: [1],
    kept: { 0: 'newest-verified' },
  },
  {
    rule: '--olderThan replaces the expiry date',
    entries: [day('2025-05-20', 365), day('2025-05-31', 365)],
    options: { olderThan: 5 },
    deleted: [0],
    kept: { 1: 'not-expired' },
  },
  {
    rule: 'other environments and other projects are not touched',
    entries: [
      day('2025-01-01'),
      day('2025-05-30'),
      { ...day('2025-01-01'), environment: 'production' },
      { ...day('2025-01-01'), project: 'web', environment: 'dev' },
    ],
    deleted: [0],
    kept: { 1: 'not-expired' },
  },
];

describe('cleanup-backups: retention rules (clock injected)', () => {
  it.each(ROWS)('$rule', async (row) => {
    const workspace = await workspaceFor(row.minKeep);
    const entries = row.entries.map((overrides) => makeEntry({ project: 'api', environment: 'dev', ...overrides }));
    await createFiles(
      workspace,
      entries.filter((_entry, index) => !row.withoutFile?.includes(index)),
    );
    await writeCatalog(workspace, entries);

    const result = data(await cleanupBackups({ environment: 'dev', ...row.options }, workspace.ctx({ now })));
    const idOf = (index: number) => entries[index]?.backup_id;
    expect(result.deleted.map((item) => item.backup_id).sort()).toEqual(row.deleted.map(idOf).sort());
    for (const [index, reason] of Object.entries(row.kept)) {
      expect(result.kept.find((item) => item.backup_id === idOf(Number(index)))?.reason).toBe(reason);
    }
    const remaining = await ids(workspace);
    for (const [index, entry] of entries.entries()) {
      const deleted = row.deleted.includes(index);
      expect(remaining.includes(entry.backup_id)).toBe(!deleted);
      if (!row.withoutFile?.includes(index)) expect(await exists(filePathOf(workspace, entry))).toBe(!deleted);
    }
  });
});

describe('cleanup-backups: real runs', () => {
  async function catalogWithManifests(workspace: TestWorkspace, entries: BackupEntry[]): Promise<void> {
    await createFiles(workspace, entries);
    for (const entry of entries) await workspace.catalog.add(entry);
  }
  const manifestOf = (workspace: TestWorkspace, entry: BackupEntry) =>
    path.join(path.dirname(filePathOf(workspace, entry)), `${entry.backup_id}.manifest.json`);
  async function snapshotOf(workspace: TestWorkspace): Promise<string> {
    const files = (await readdir(workspace.backupRoot, { recursive: true })).sort();
    return `${files.join('\n')}\n${await readFile(path.join(workspace.backupRoot, 'backups.json'), 'utf8')}`;
  }

  it('a dry run prints the plan and changes nothing; the real run deletes files, manifests and entries', async () => {
    const workspace = await workspaceFor();
    const expired = makeEntry({ project: 'api', environment: 'dev', ...day('2025-01-01') });
    const labelled = makeEntry({ project: 'api', environment: 'dev', ...day('2025-01-02'), label: 'important' });
    const fresh = makeEntry({ project: 'api', environment: 'dev', ...day('2025-05-30') });
    await catalogWithManifests(workspace, [expired, labelled, fresh]);
    const before = await snapshotOf(workspace);

    const plan = data(await cleanupBackups({ environment: 'dev', dryRun: true }, workspace.ctx({ now })));
    expect(plan).toMatchObject({
      dry_run: true,
      deleted: [{ backup_id: expired.backup_id, reason: 'expired', why: 'expired 2025-01-31' }],
    });
    expect(plan.kept.map((item) => item.why)).toEqual(['protected label "important"', 'expires 2025-06-29']);
    expect(await snapshotOf(workspace)).toBe(before);
    const printed = workspace.output.join('\n');
    expect(printed).toContain(`- ${expired.backup_id} (dev): expired 2025-01-31`);
    expect(printed).toContain(`= ${labelled.backup_id} (dev): kept, protected label \\"important\\"`);

    const run = data(await cleanupBackups({ environment: 'dev' }, workspace.ctx({ now })));
    expect(run).toMatchObject({ dry_run: false, freed_bytes: 1024, failed_deletions: [] });
    expect(await ids(workspace)).toEqual([labelled.backup_id, fresh.backup_id]);
    expect(await exists(filePathOf(workspace, expired))).toBe(false);
    expect(await exists(manifestOf(workspace, expired))).toBe(false);
    expect(await exists(manifestOf(workspace, fresh))).toBe(true);
  });

  it('a protected environment needs --yes without a terminal', async () => {
    const workspace = await workspaceFor();
    const entries = [
      makeEntry({ project: 'api', environment: 'production', ...day('2024-01-01') }),
      makeEntry({ project: 'api', environment: 'production', ...day('2025-05-30') }),
    ];
    await catalogWithManifests(workspace, entries);
    expect(await cleanupBackups({ environment: 'production' }, workspace.ctx({ now }))).toMatchObject({
      status: 'error',
      error_code: 'CONFIRMATION_REQUIRED',
    });
    expect(await ids(workspace)).toHaveLength(2);
    expect(
      data(await cleanupBackups({ environment: 'production', yes: true }, workspace.ctx({ now }))).deleted,
    ).toHaveLength(1);
    expect(await ids(workspace)).toEqual([entries[1]?.backup_id]);
  });

  it('a crash between the catalog and the files leaves only orphans that the next run sees and repairs', async () => {
    const workspace = await workspaceFor();
    const expired = makeEntry({ project: 'api', environment: 'dev', ...day('2025-01-01') });
    const fresh = makeEntry({ project: 'api', environment: 'dev', ...day('2025-05-30') });
    await catalogWithManifests(workspace, [expired, fresh]);
    const policy = { now: dayjs(NOW), project: 'api', environment: 'dev', protectedLabels: [], minKeep: 1 };

    // Step one only (the catalog, which drops the manifest), then the "crash": the file stays.
    await commitCleanup(workspace.catalog, {
      policy,
      previewIds: new Set([expired.backup_id]),
      missingIds: new Set(),
      removeMissing: false,
      readd: [],
    });
    expect(await exists(filePathOf(workspace, expired))).toBe(true);
    expect(await exists(manifestOf(workspace, expired))).toBe(false);
    await expectEveryEntryHasItsFile(workspace);
    const listed = await listBackups({ environment: 'dev' }, workspace.ctx());
    expect(listed.status === 'success' && listed.result.backups.map((backup) => backup.backup_id)).toEqual([
      fresh.backup_id,
    ]);

    await age(filePathOf(workspace, expired));
    const seen = data(await cleanupBackups({ environment: 'dev', dryRun: true }, workspace.ctx({ now })));
    expect(seen.orphans).toEqual([
      expect.objectContaining({ kind: 'file-without-manifest', backup_id: expired.backup_id, action: 'reported' }),
    ]);
    const repaired = data(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx({ now })));
    expect(repaired.orphans).toEqual([expect.objectContaining({ kind: 'file-without-manifest', action: 'repaired' })]);
    expect(await exists(filePathOf(workspace, expired))).toBe(false);
  });

  it('a crash after the catalog was saved but before the manifest went leaves a backup that --yes puts back in the catalog', async () => {
    const workspace = await workspaceFor();
    const expired = makeEntry({ project: 'api', environment: 'dev', ...day('2025-01-01') });
    const fresh = makeEntry({ project: 'api', environment: 'dev', ...day('2025-05-30') });
    await catalogWithManifests(workspace, [expired, fresh]);
    const policy = { now: dayjs(NOW), project: 'api', environment: 'dev', protectedLabels: [], minKeep: 1 };
    await commitCleanup(workspace.catalog, {
      policy,
      previewIds: new Set([expired.backup_id]),
      missingIds: new Set(),
      removeMissing: false,
      readd: [],
    });
    await writeManifest(expired, workspace.root); // the manifest removal never happened
    await age(filePathOf(workspace, expired));
    await age(manifestOf(workspace, expired));
    await expectEveryEntryHasItsFile(workspace);

    const seen = data(await cleanupBackups({ environment: 'dev', dryRun: true }, workspace.ctx({ now })));
    expect(seen.orphans).toEqual([
      expect.objectContaining({ kind: 'file-with-manifest', backup_id: expired.backup_id, action: 'reported' }),
    ]);
    data(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx({ now })));
    // Back in the catalog with the status a fresh check gives it (the stand-in file does not match its checksum).
    const readded = (await workspace.catalog.read()).entries.find((entry) => entry.backup_id === expired.backup_id);
    expect(readded).toMatchObject({ status: 'verification_failed', verification: { integrity_check: 'failed' } });
    // And the next run deletes it like any other expired backup.
    expect(
      data(await cleanupBackups({ environment: 'dev' }, workspace.ctx({ now }))).deleted.map((item) => item.backup_id),
    ).toEqual([expired.backup_id]);
    expect(await exists(filePathOf(workspace, expired))).toBe(false);
    expect(await ids(workspace)).toEqual([fresh.backup_id]);
  });

  it('reports every kind of orphan, repairs with --yes what is safe, and leaves recent, open or undescribed files alone', async () => {
    const workspace = await workspaceFor();
    const kept = makeEntry({ project: 'api', environment: 'dev', ...day('2025-05-30') });
    const gone = makeEntry({ project: 'api', environment: 'dev', ...day('2025-05-29') });
    await createFiles(workspace, [kept]);
    await writeCatalog(workspace, [gone, kept]);
    const directory = path.dirname(filePathOf(workspace, kept));
    const file = (name: string) => path.join(directory, name);
    const oldLeftovers = [
      'backup-20250101-000000.sql.zst.partial',
      'backup-20250102-000000.sqlite.zst',
      'backup-20250103-000000.manifest.json',
      'backup-20250104-000000.sql.zst',
    ];
    for (const name of oldLeftovers) await writeFile(file(name), 'leftover');
    await writeFile(file('backup-20250104-000000.manifest.json'), 'not json');
    await writeFile(file('backup-20250105-000000.sql.zst.partial'), 'being written');
    await writeFile(file('backup-20250106-000000.sql.partial'), 'held open');
    await writeFile(file('notes.txt'), 'not ours');
    for (const name of [
      ...oldLeftovers,
      'backup-20250104-000000.manifest.json',
      'backup-20250106-000000.sql.partial',
      'notes.txt',
    ])
      await age(file(name));
    const holder = await open(file('backup-20250106-000000.sql.partial'), 'r');
    try {
      const report = data(await cleanupBackups({ environment: 'dev' }, workspace.ctx({ now })));
      const kinds = Object.fromEntries(
        report.orphans.map((orphan) => [path.basename(orphan.path), `${orphan.kind}:${orphan.action}`]),
      );
      expect(kinds).toEqual({
        [path.basename(gone.file_path)]: 'entry-without-file:reported',
        'backup-20250101-000000.sql.zst.partial': 'leftover:reported',
        'backup-20250102-000000.sqlite.zst': 'file-without-manifest:reported',
        'backup-20250103-000000.manifest.json': 'stale-manifest:reported',
        'backup-20250104-000000.sql.zst': 'invalid-manifest:reported',
        'backup-20250105-000000.sql.zst.partial': 'leftover:reported',
        'backup-20250106-000000.sql.partial': 'leftover:reported',
      });
      expect(await ids(workspace)).toEqual([gone.backup_id, kept.backup_id]);

      const repaired = data(await cleanupBackups({ environment: 'dev', yes: true }, workspace.ctx({ now })));
      const actions = Object.fromEntries(repaired.orphans.map((orphan) => [path.basename(orphan.path), orphan.action]));
      expect(actions).toEqual({
        [path.basename(gone.file_path)]: 'repaired',
        'backup-20250101-000000.sql.zst.partial': 'repaired',
        'backup-20250102-000000.sqlite.zst': 'repaired',
        'backup-20250103-000000.manifest.json': 'repaired',
        'backup-20250104-000000.sql.zst': 'held',
        'backup-20250105-000000.sql.zst.partial': 'held',
        'backup-20250106-000000.sql.partial': 'held',
      });
      expect(repaired.orphans.find((orphan) => orphan.path.endsWith('06-000000.sql.partial'))?.detail).toContain(
        'has it open',
      );
      expect(repaired.orphans.find((orphan) => orphan.path.endsWith('05-000000.sql.zst.partial'))?.detail).toContain(
        'less than 10 minutes',
      );
    } finally {
      await holder.close();
    }
    expect((await readdir(directory)).sort()).toEqual(
      [
        path.basename(kept.file_path),
        'backup-20250104-000000.manifest.json',
        'backup-20250104-000000.sql.zst',
        'backup-20250105-000000.sql.zst.partial',
        'backup-20250106-000000.sql.partial',
        'notes.txt',
      ].sort(),
    );
    expect(await ids(workspace)).toEqual([kept.backup_id]);
  });
});

async function expectEveryEntryHasItsFile(workspace: TestWorkspace): Promise<void> {
  for (const entry of (await workspace.catalog.read()).entries)
    expect(await exists(filePathOf(workspace, entry))).toBe(true);
}
