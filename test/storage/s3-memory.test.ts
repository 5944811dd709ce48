// A 1 GB dump through S3 in bounded memory: a backup process streams a 1 GiB plain-SQL dump
// (the real pg_dump's output with 1 GiB of generated comment rows before its real trailer)
// through zstd into a multipart upload to the test server; its peak RSS (VmHWM) stays under
// 200 MB, and the backup is listed and verifies.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/operations/list.ts';
import { verifyBackup } from '../../src/operations/verify.ts';
import { freshPostgres, tracked } from '../support/databases.ts';
import { seedAwkwardData } from '../support/fixtures.ts';
import { succeeded } from '../support/results.ts';
import { makeWorkspace } from '../support/workspace.ts';
import { bundleOperationFixture, runOperationChild } from '../reliability/support.ts';
import { startS3Server, type TestS3Server } from '../support/s3-server.ts';
import { s3StorageConfig } from '../support/s3-servers.ts';

const execFileAsync = promisify(execFile);
const track = tracked();
const GIB = 1024 ** 3;
/** Issue 11's bound, for the code as it ships (plain JavaScript, see bundleOperationFixture). */
const PEAK_RSS_LIMIT_KB = 200 * 1000;
let server: TestS3Server;
let bin: string;
let fixture: string;

beforeAll(async () => {
  server = await startS3Server({ enforceConditions: true });
  Object.assign(process.env, server.env);
  bin = await mkdtemp(path.join(tmpdir(), 'faber-big-dump-bin-'));
  await writeFile(
    path.join(bin, 'pg_dump'),
    bigPgDump((await execFileAsync('sh', ['-c', 'command -v pg_dump'])).stdout.trim(), GIB),
  );
  await chmod(path.join(bin, 'pg_dump'), 0o755);
  fixture = await bundleOperationFixture(path.join(bin, 'fixture'));
}, 60_000);

afterAll(async () => {
  await server.close();
  await rm(bin, { recursive: true, force: true });
});

/**
 * A pg_dump that runs the real one and adds `fillerBytes` of comment rows before the real
 * trailer: varied enough that zstd has work to do, generated as fast as perl prints.
 */
function bigPgDump(realPgDump: string, fillerBytes: number): string {
  const filler = `
    my @pads = map { my $p = $_; join(" ", map { sprintf("%08x", ($p * 2654435761 + $_ * 40503) % 4294967296) } 1 .. 18) } 1 .. 29;
    my ($written, $i) = (0, 0);
    while (<STDIN>) {
      if (/^-- PostgreSQL database dump complete/) {
        while ($written < ${fillerBytes}) {
          my $line = sprintf("-- filler %d %08x %08x %08x %s %d\\n", $i, ($i * 2654435761) % 4294967296, ($i * 40503 + 17) % 4294967291, ($i * $i) % 4294967279, $pads[$i % 29], ($i * 7919) % 1000003);
          print $line; $written += length($line); $i++;
        }
      }
      print;
    }`;
  return `#!/bin/bash\nset -o pipefail\nif [ "$1" = "--version" ]; then exec ${JSON.stringify(realPgDump)} --version; fi\n${JSON.stringify(realPgDump)} "$@" | perl -e ${shellQuote(filler)}\n`;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

describe('a 1 GB dump through S3', () => {
  it('is backed up by a process whose peak RSS stays under 200 MB, then listed and verified', async () => {
    const prefix = `big-${randomBytes(3).toString('hex')}`;
    const live = await track(freshPostgres());
    await seedAwkwardData('postgresql', live.url);
    const workspace = await makeWorkspace(
      {
        database: { provider: 'postgresql' },
        backup: {
          format: 'sql',
          storage: s3StorageConfig(server, prefix),
        },
      },
      { ...server.env, DEV_DATABASE_URL: live.url },
    );
    const outcome = await runOperationChild(
      {
        operation: 'backup',
        workspaceRoot: workspace.root,
        projectName: 'api',
        options: { environment: 'dev' },
        reportPeakRss: true,
      },
      { PATH: `${bin}:${process.env.PATH}`, HOME: process.env.HOME, DEV_DATABASE_URL: live.url, ...server.env },
      fixture,
    ).done;
    expect(outcome.result, outcome.stdout + outcome.stderr).toMatchObject({
      status: 'success',
      result: { verification: { integrity_check: 'passed' } },
    });
    const backupId = (outcome.result as { result: { backup_id: string } }).result.backup_id;
    const peakKb = Number(/^PEAK_RSS_KB (\d+)$/m.exec(outcome.stdout)?.[1]);
    console.log(
      `peak RSS of the backup process for a ${GIB} byte dump to S3: ${Math.round(peakKb / 1000)} MB; CPU ${/^CPU_MS (\d+)$/m.exec(outcome.stdout)?.[1]} ms`,
    );
    expect(peakKb).toBeGreaterThan(0);
    expect(peakKb).toBeLessThan(PEAK_RSS_LIMIT_KB);

    const listed = succeeded(await listBackups({ environment: 'dev' }, workspace.ctx()));
    expect(JSON.stringify(listed)).toContain(backupId);
    const verified = succeeded(await verifyBackup({ environment: 'dev', backupId }, workspace.ctx()));
    expect(verified.backups[0]).toMatchObject({ backup_id: backupId, passed: true });
    expect(verified.backups[0]?.checks).toEqual(expect.arrayContaining(['decoded content checksum matches']));
  }, 600_000);
});
