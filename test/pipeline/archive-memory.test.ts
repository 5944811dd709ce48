// Buffers in use while a backup streams, is verified and is restored: a 160 MB dump read from a
// tool (cat) through the block channel, compressed, checked in the same pass and written (also
// age-encrypted); decoded again by verify; and fed to a tool's stdin as a restore feeds psql.
// Each step runs in a fresh process (fixtures/buffers-step.ts) that samples its ArrayBuffer bytes
// every 5 ms. The pooled blocks, the reused read buffers and the buffers in flight stay in use;
// every spent buffer is freed as its last reader finishes with it. Left to V8 instead, they added
// 36-71 MB at the peak of each step here (all six failed); freed, 2-12 MB.
import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateX25519Identity } from 'age-encryption';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveStats } from '../../src/pipeline/archive.ts';
import type { VerifyReport } from '../../src/pipeline/verify.ts';
import { tempDirectory } from '../support/temp.ts';

const execFileAsync = promisify(execFile);
const STEP = path.join(__dirname, 'fixtures', 'buffers-step.ts');
const LIMIT_MB = 32;
const DUMP_MB = 160;

/** 160 MB of hex text (compresses to about 60 %). */
async function writeDump(file: string): Promise<string> {
  const piece = Buffer.allocUnsafe(1024 * 1024);
  const random = Buffer.allocUnsafe(piece.length / 2);
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  for (let i = 0; i < DUMP_MB; i++) {
    randomFillSync(random);
    piece.write(random.toString('hex'));
    hash.update(piece);
    await handle.write(piece);
  }
  await handle.close();
  return hash.digest('hex');
}

async function runStep<T>(spec: Record<string, unknown>): Promise<{ addedMb: number; result: T }> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--disable-warning=MODULE_TYPELESS_PACKAGE_JSON', STEP, JSON.stringify(spec)],
    { maxBuffer: 1024 * 1024 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as { addedMb: number; result: T };
}

let dir: string;
let dump: string;
let dumpSha256: string;

beforeAll(async () => {
  dir = await tempDirectory('faber-archive-memory-');
  dump = path.join(dir, 'dump.sql');
  dumpSha256 = await writeDump(dump);
});

describe.each([
  ['zstd', false],
  ['zstd + age', true],
] as const)(`buffers in use for a ${DUMP_MB} MB dump (%s)`, (label, encrypted) => {
  let identity: string | undefined;
  let stats: ArchiveStats;
  const files = () => ({
    dump,
    stored: path.join(dir, `b-${encrypted}.sql.zst`),
    restored: path.join(dir, `restored-${encrypted}.sql`),
    ...(identity ? { identity } : {}),
  });

  beforeAll(async () => {
    identity = encrypted ? await generateX25519Identity() : undefined;
  });

  it(`while it is archived and checked in the same pass: under ${LIMIT_MB} MB added`, async () => {
    const step = await runStep<ArchiveStats>({ step: 'archive', ...files() });
    stats = step.result;
    console.log(`${label}, archive: ${step.addedMb.toFixed(1)} MB of ArrayBuffers added at the peak`);
    expect(stats.decodeCheck).toEqual({ checked: true, problem: null });
    expect(stats.contentSha256).toBe(dumpSha256);
    expect(step.addedMb).toBeLessThan(LIMIT_MB);
  });

  it(`while verify decodes and hashes it: under ${LIMIT_MB} MB added`, async () => {
    const step = await runStep<VerifyReport>({ step: 'verify', ...files(), stats });
    console.log(`${label}, verify: ${step.addedMb.toFixed(1)} MB of ArrayBuffers added at the peak`);
    expect(step.result.checks).toEqual(
      expect.arrayContaining(['file checksum (sha256) matches', 'decoded content checksum matches']),
    );
    expect(step.addedMb).toBeLessThan(LIMIT_MB);
  });

  it(`while a restore feeds it to a tool's stdin: every byte arrives, under ${LIMIT_MB} MB added`, async () => {
    const step = await runStep<{ contentSha256: string }>({ step: 'restore', ...files() });
    console.log(`${label}, restore: ${step.addedMb.toFixed(1)} MB of ArrayBuffers added at the peak`);
    expect(step.result.contentSha256).toBe(dumpSha256);
    expect(
      createHash('sha256')
        .update(await readFile(files().restored))
        .digest('hex'),
    ).toBe(dumpSha256);
    expect(step.addedMb).toBeLessThan(LIMIT_MB);
  });
});
