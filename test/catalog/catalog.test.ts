import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.ts';
import { manifestPathFor } from '../../src/catalog/manifest.ts';
import { type BackupEntry, catalogSchema } from '../../src/catalog/schema.ts';
import { type EntryOverrides, makeEntry } from '../support/entries.ts';
import { runFixture } from './child.ts';
import { stringContaining } from '../support/matchers.ts';

let workspace: string;
let backupRoot: string;
let catalogFile: string;
let warnings: string[];

beforeEach(async () => {
  workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'faber-catalog-'));
  backupRoot = path.join(workspace, '.fractary/plugins/faber-db/backups');
  catalogFile = path.join(backupRoot, 'backups.json');
  warnings = [];
});
afterEach(async () => {
  await fs.rm(workspace, { recursive: true, force: true });
});

function openCatalog(): Catalog {
  return new Catalog({ backupRoot, workspaceRoot: workspace, onWarning: (message) => warnings.push(message) });
}

/** An entry whose backup directory exists, as after a real backup (so its manifest can be written). */
async function backupEntry(overrides: EntryOverrides = {}): Promise<BackupEntry> {
  const entry = makeEntry(overrides);
  await fs.mkdir(path.dirname(manifestPathFor(entry, workspace)), { recursive: true });
  return entry;
}

const exists = (file: string) =>
  fs.access(file).then(
    () => true,
    () => false,
  );
const ids = (entries: BackupEntry[]) => entries.map((entry) => entry.backup_id);

describe('Catalog basics', () => {
  it('reads an empty catalog when nothing exists, without creating anything', async () => {
    expect(await openCatalog().read()).toEqual({ entries: [], rebuilt: false, warnings: [] });
    expect(await exists(backupRoot)).toBe(false);
  });

  it('adds, finds, patches and removes entries, keeping each manifest in step', async () => {
    const catalog = openCatalog();
    const first = await backupEntry({ created_at: '2025-01-02T00:00:00.000Z' });
    const second = await backupEntry({ created_at: '2025-01-01T00:00:00.000Z' });
    await catalog.add(first);
    await catalog.add(second);
    expect(ids((await catalog.read()).entries)).toEqual([second.backup_id, first.backup_id]);
    expect(await catalog.find(first.backup_id)).toEqual(first);
    expect(await catalog.find('backup-20000101-000000')).toBeUndefined();

    const patched = await catalog.patch(first.backup_id, (entry) => {
      entry.pinned = true;
    });
    expect(patched.pinned).toBe(true);
    const manifest = JSON.parse(await fs.readFile(manifestPathFor(first, workspace), 'utf8')) as {
      backup: BackupEntry;
    };
    expect(manifest.backup.pinned).toBe(true);

    expect(ids(await catalog.remove([second.backup_id, 'backup-20000101-000000']))).toEqual([second.backup_id]);
    expect(ids((await catalog.read()).entries)).toEqual([first.backup_id]);
    expect(await exists(manifestPathFor(second, workspace))).toBe(false);
    expect(await exists(manifestPathFor(first, workspace))).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('writes the original shape, 2-space JSON, oldest first with ties broken by id, mode 0600', async () => {
    const catalog = openCatalog();
    const sameSecond = '2025-01-05T00:00:00.000Z';
    const entries = [
      makeEntry({ created_at: sameSecond, backup_id: 'backup-20250105-000000-b' }),
      makeEntry({ created_at: '2025-01-01T00:00:00.000Z' }),
      makeEntry({ created_at: sameSecond, backup_id: 'backup-20250105-000000-a' }),
    ];
    await catalog.update((current) => {
      current.push(...entries);
    });
    const text = await fs.readFile(catalogFile, 'utf8');
    expect(text.startsWith('{\n  "schema_version": "1.0",\n  "backups": [\n    {\n      "backup_id"')).toBe(true);
    const file = catalogSchema.parse(JSON.parse(text));
    expect(ids(file.backups)).toEqual([entries[1]!.backup_id, 'backup-20250105-000000-a', 'backup-20250105-000000-b']);
    expect((await fs.stat(catalogFile)).mode & 0o777).toBe(0o600);
    expect((await fs.stat(backupRoot)).mode & 0o777).toBe(0o700);
    expect((await fs.readdir(backupRoot)).sort()).toEqual(['backups.json']);
  });

  it('refuses a duplicate id, an invalid entry and a file_path outside the backup directory, leaving the catalog as it was', async () => {
    const catalog = openCatalog();
    const entry = await backupEntry();
    await catalog.add(entry);
    const before = await fs.readFile(catalogFile, 'utf8');
    await expect(catalog.add(entry)).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
      message: stringContaining('already'),
    });
    await expect(catalog.add({ ...makeEntry(), size_bytes: -5 })).rejects.toMatchObject({
      message: stringContaining('size_bytes'),
    });
    await expect(catalog.add({ ...makeEntry(), file_path: '../elsewhere/x.sql' })).rejects.toMatchObject({
      message: stringContaining('outside the backup directory'),
    });
    await expect(catalog.patch('backup-20000101-000000', () => undefined)).rejects.toMatchObject({
      code: 'BACKUP_NOT_FOUND',
    });
    expect(await fs.readFile(catalogFile, 'utf8')).toBe(before);
    expect(await exists(catalog.lockPath)).toBe(false);
  });

  it('cleans up catalog temp files left by a writer that died before its rename', async () => {
    const catalog = openCatalog();
    await catalog.add(await backupEntry());
    const orphan = path.join(backupRoot, 'backups.json.tmp-999999-0123456789ab');
    await fs.writeFile(orphan, '{"schema_version": "1.0", "backups": [');
    await catalog.add(await backupEntry());
    expect(await exists(orphan)).toBe(false);
  });

  it('returns what the mutation returns and supports async mutations', async () => {
    const catalog = openCatalog();
    const result = await catalog.update(async (entries) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      entries.push(makeEntry());
      return entries.length;
    });
    expect(result).toBe(1);
  });
});

describe('Catalog rebuild from manifests', () => {
  async function catalogWithThree(): Promise<{ catalog: Catalog; entries: BackupEntry[] }> {
    const catalog = openCatalog();
    const entries = [
      await backupEntry({ created_at: '2025-01-01T00:00:00.000Z' }),
      await backupEntry({ created_at: '2025-01-02T00:00:00.000Z', environment: 'staging' }),
      await backupEntry({ created_at: '2025-01-03T00:00:00.000Z', project: 'api' }),
    ];
    for (const entry of entries) await catalog.add(entry);
    return { catalog, entries };
  }

  it('rebuilds a deleted backups.json, saves it and says so', async () => {
    const { catalog, entries } = await catalogWithThree();
    await fs.rm(catalogFile);
    const result = await catalog.read();
    expect(result.rebuilt).toBe(true);
    expect(result.entries).toEqual(entries);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/was missing; rebuilt it from 3 backup manifests/);
    expect(catalogSchema.parse(JSON.parse(await fs.readFile(catalogFile, 'utf8'))).backups).toEqual(entries);
    expect(await catalog.read()).toEqual({ entries, rebuilt: false, warnings: [] });
  });

  it('rebuilds a garbled backups.json and keeps the broken file beside it', async () => {
    const { catalog, entries } = await catalogWithThree();
    await fs.writeFile(catalogFile, '{"schema_version": "1.0", "backups": [{"backup_id": ');
    const result = await catalog.read();
    expect(result.entries).toEqual(entries);
    const corrupt = (await fs.readdir(backupRoot)).filter((name) => name.startsWith('backups.json.corrupt-'));
    expect(corrupt).toHaveLength(1);
    expect(await fs.readFile(path.join(backupRoot, corrupt[0]!), 'utf8')).toBe(
      '{"schema_version": "1.0", "backups": [{"backup_id": ',
    );
    expect(result.warnings[0]).toContain('not valid JSON');
    expect(result.warnings[0]).toContain(corrupt[0]);
  });

  it('rebuilds a catalog that is JSON but not a valid catalog', async () => {
    const { catalog, entries } = await catalogWithThree();
    await fs.writeFile(catalogFile, JSON.stringify({ schema_version: '1.0', backups: [{ backup_id: 'nope' }] }));
    const result = await catalog.read();
    expect(result.entries).toEqual(entries);
    expect(result.warnings[0]).toContain('backups[0]');
  });

  it('rebuilds before an update, reporting through onWarning, and applies the update', async () => {
    const { catalog, entries } = await catalogWithThree();
    await fs.writeFile(catalogFile, '');
    const added = await backupEntry({ created_at: '2025-01-04T00:00:00.000Z' });
    await catalog.add(added);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('rebuilt it from 3 backup manifests');
    expect(ids((await catalog.read()).entries)).toEqual(ids([...entries, added]));
  });

  it('reports a corrupt manifest without failing, and rebuilds from the others', async () => {
    const { catalog, entries } = await catalogWithThree();
    const broken = manifestPathFor(entries[1]!, workspace);
    await fs.writeFile(broken, '{ truncated');
    await fs.rm(catalogFile);
    const result = await catalog.read();
    expect(ids(result.entries)).toEqual(ids([entries[0]!, entries[2]!]));
    expect(result.warnings).toHaveLength(2);
    expect(result.warnings[1]).toContain(broken);
  });

  it('treats manifests without a catalog as a catalog to rebuild, not as an empty one', async () => {
    const { entries } = await catalogWithThree();
    await fs.rm(catalogFile);
    expect(await openCatalog().update((current) => current.length)).toBe(entries.length);
  });
});

describe('Catalog across processes', () => {
  it('loses no entry when 8 processes each add 25 backups at the same time', async () => {
    const projects = Array.from({ length: 8 }, (_, index) => `w${index}`);
    for (const project of projects) await fs.mkdir(path.join(backupRoot, project, 'production'), { recursive: true });
    const startAt = String(Date.now() + 1_500);
    const children = projects.map((project) =>
      runFixture('add-entries.ts', [backupRoot, workspace, project, '25', startAt]),
    );
    const results = await Promise.all(children.map((child) => child.done));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

    const file = catalogSchema.parse(JSON.parse(await fs.readFile(catalogFile, 'utf8')));
    expect(file.backups).toHaveLength(200);
    expect(new Set(ids(file.backups)).size).toBe(200);
    for (const project of projects) {
      expect(file.backups.filter((entry) => entry.project === project)).toHaveLength(25);
      expect(await fs.readdir(path.join(backupRoot, project, 'production'))).toHaveLength(25);
    }
    expect((await fs.readdir(backupRoot)).filter((name) => name.includes('.tmp-') || name.endsWith('.lock'))).toEqual(
      [],
    );

    await fs.rm(catalogFile);
    expect((await openCatalog().read()).entries).toEqual(file.backups);
  });
});

// How fast a large catalog reads is the bench's catalog.list case (npm run bench), not a test.
describe('a large catalog', () => {
  it('reads and validates 10 000 entries, and adds one more under the lock', async () => {
    const catalog = openCatalog();
    const entries = Array.from({ length: 10_000 }, (_, index) =>
      makeEntry({
        project: `p${index % 20}`,
        environment: ['dev', 'staging', 'production'][index % 3],
        created_at: new Date(Date.UTC(2024, 0, 1) + index * 3_600_000).toISOString(),
        label: index % 4 === 0 ? 'nightly' : null,
        tags: ['scheduled'],
        table_row_counts: { users: index, orders: index * 3 },
      }),
    );
    await catalog.update((current) => {
      current.push(...entries);
    });
    expect((await catalog.read()).entries).toHaveLength(10_000);
    await catalog.add(makeEntry({ created_at: '2030-01-01T00:00:00.000Z' }));
    expect((await catalog.read()).entries).toHaveLength(10_001);
  });
});
