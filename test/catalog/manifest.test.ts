import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  manifestPathFor,
  readManifest,
  scanManifests,
  serializeManifest,
  writeManifest,
} from '../../src/catalog/manifest.ts';
import type { BackupEntry } from '../../src/catalog/schema.ts';
import { makeEntry } from '../support/entries.ts';
import { stringContaining } from '../support/matchers.ts';

let workspace: string;
let backupRoot: string;

beforeEach(async () => {
  workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'faber-manifest-'));
  backupRoot = path.join(workspace, 'backups');
});
afterEach(async () => {
  await fs.rm(workspace, { recursive: true, force: true });
});

function entryIn(project: string, environment: string, createdAt = '2025-02-01T08:00:00.000Z'): BackupEntry {
  const entry = makeEntry({ project, environment, created_at: createdAt });
  return { ...entry, file_path: `backups/${project}/${environment}/${entry.backup_id}.sql.zst` };
}

async function place(entry: BackupEntry): Promise<string> {
  await fs.mkdir(path.dirname(manifestPathFor(entry, workspace)), { recursive: true });
  return writeManifest(entry, workspace);
}

describe('manifestPathFor', () => {
  it('puts the manifest next to the backup file', () => {
    const entry = entryIn('app', 'production');
    expect(manifestPathFor(entry, workspace)).toBe(
      path.join(workspace, 'backups/app/production', `${entry.backup_id}.manifest.json`),
    );
  });

  it('accepts an absolute file_path (a backup directory outside the workspace)', () => {
    const entry = { ...entryIn('app', 'dev'), file_path: '/srv/backups/app/dev/backup-20250201-080000.sql' };
    expect(manifestPathFor(entry, workspace)).toBe(
      path.join('/srv/backups/app/dev', `${entry.backup_id}.manifest.json`),
    );
  });
});

describe('writeManifest and readManifest', () => {
  it('round-trips an entry through a 0600 file', async () => {
    const entry = entryIn('app', 'production');
    const written = await place(entry);
    expect((await fs.stat(written)).mode & 0o777).toBe(0o600);
    expect(await readManifest(written)).toEqual(entry);
    expect(JSON.parse(await fs.readFile(written, 'utf8'))).toEqual({ schema_version: '1.0', backup: entry });
  });

  it('rejects garbled JSON, a schema violation and a name that does not match the id', async () => {
    const entry = entryIn('app', 'production');
    const target = await place(entry);
    await fs.writeFile(target, '{"schema_version": "1.0", "backup": {');
    await expect(readManifest(target)).rejects.toMatchObject({
      code: 'CATALOG_INVALID',
      message: stringContaining('not JSON'),
    });
    await fs.writeFile(target, serializeManifest({ ...entry, size_bytes: -1 }));
    await expect(readManifest(target)).rejects.toMatchObject({ message: stringContaining('backup.size_bytes') });
    const renamed = path.join(path.dirname(target), 'backup-20990101-000000.manifest.json');
    await fs.writeFile(renamed, serializeManifest(entry));
    await expect(readManifest(renamed)).rejects.toMatchObject({
      message: stringContaining(`describes ${entry.backup_id}`),
    });
  });
});

describe('scanManifests', () => {
  it('returns nothing for a backup directory that does not exist', async () => {
    expect(await scanManifests(backupRoot)).toEqual({ entries: [], problems: [] });
  });

  it('finds manifests of every project and environment, oldest first, scoped project names included', async () => {
    const newer = entryIn('app', 'production', '2025-03-01T00:00:00.000Z');
    const older = entryIn('api', 'dev', '2025-01-01T00:00:00.000Z');
    const scoped = entryIn('@org/web', 'staging', '2025-02-01T00:00:00.000Z');
    for (const entry of [newer, older, scoped]) await place(entry);
    const scan = await scanManifests(backupRoot);
    expect(scan.problems).toEqual([]);
    expect(scan.entries.map((entry) => entry.backup_id)).toEqual(
      [older, scoped, newer].map((entry) => entry.backup_id),
    );
  });

  it('reports invalid manifests and duplicate ids as problems, and still returns the good ones', async () => {
    const good = entryIn('app', 'production');
    const goodPath = await place(good);
    const broken = entryIn('app', 'production', '2025-02-02T00:00:00.000Z');
    const brokenPath = await place(broken);
    await fs.writeFile(brokenPath, 'not json at all');
    const copyPath = path.join(backupRoot, 'app', 'staging', path.basename(goodPath));
    await fs.mkdir(path.dirname(copyPath), { recursive: true });
    await fs.copyFile(goodPath, copyPath);

    const scan = await scanManifests(backupRoot);
    expect(scan.entries.map((entry) => entry.backup_id)).toEqual([good.backup_id]);
    expect(scan.problems.map((problem) => problem.path).sort()).toEqual([brokenPath, copyPath].sort());
    expect(scan.problems.find((problem) => problem.path === copyPath)?.message).toContain('already described by');
  });

  it('does not descend into directory-format dumps', async () => {
    const entry = entryIn('app', 'production');
    await place(entry);
    const dumpDir = path.join(backupRoot, 'app', 'production', entry.backup_id);
    await fs.mkdir(dumpDir);
    await fs.writeFile(path.join(dumpDir, 'stray.manifest.json'), 'would be a problem if it were read');
    expect(await scanManifests(backupRoot)).toMatchObject({ problems: [], entries: [{ backup_id: entry.backup_id }] });
  });

  it('scans 2 000 manifests quickly', async () => {
    const entries = Array.from({ length: 2_000 }, (_, index) =>
      entryIn(
        `p${index % 10}`,
        ['dev', 'production'][index % 2]!,
        new Date(Date.UTC(2025, 0, 1) + index * 60_000).toISOString(),
      ),
    );
    for (const entry of entries) await fs.mkdir(path.dirname(manifestPathFor(entry, workspace)), { recursive: true });
    // Plain writes: this measures the scan, not fsync.
    await Promise.all(
      entries.map((entry) => fs.writeFile(manifestPathFor(entry, workspace), serializeManifest(entry))),
    );
    const started = performance.now();
    const scan = await scanManifests(backupRoot);
    const elapsed = performance.now() - started;
    console.log(`scanManifests: 2000 manifests in ${elapsed.toFixed(0)} ms`);
    expect(scan.entries).toHaveLength(2_000);
  });
});
