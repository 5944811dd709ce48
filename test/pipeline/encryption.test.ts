import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { execa } from 'execa';
import { Decrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isX25519Recipient } from '../../src/config/age-recipients.ts';
import type { Compression } from '../../src/config/schema.ts';
import { writeArchive, type ArchiveStats } from '../../src/pipeline/archive.ts';
import {
  checkStoredAgeHeader,
  createDecryptStage,
  createEncryptStage,
  loadIdentities,
  prepareEncryption,
} from '../../src/pipeline/encryption.ts';
import { startInPassVerification, verifyBackupFile, type VerifyReport } from '../../src/pipeline/verify.ts';

const TRAILER = '-- PostgreSQL database dump complete\n';
/** age's payload chunk on disk: 64 KiB of ciphertext and a 16-byte tag. */
const AGE_CHUNK = 64 * 1024 + 16;

let dir: string;
let identity: string;
let recipient: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'faber-age-'));
  identity = await generateX25519Identity();
  recipient = await identityToRecipient(identity);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A plain SQL dump of about `bytes` that does not compress away (several age chunks even after zstd). */
function sqlDump(bytes: number, trailer = TRAILER): Buffer {
  const lines = ['-- PostgreSQL database dump\n'];
  for (let size = 0; size < bytes; size += 80)
    lines.push(`INSERT INTO t VALUES ('${randomBytes(32).toString('hex')}');\n`);
  return Buffer.from(lines.join('') + trailer);
}

/** The backup's own write path: in-pass checks on the plaintext, age after compression, then the stored file's checks. */
async function encryptedArchive(
  name: string,
  dump: Buffer | (() => Readable),
  compression: Compression = 'zstd',
): Promise<{ file: string; stats: ArchiveStats; plaintext: VerifyReport }> {
  const file = path.join(dir, name);
  const inPass = startInPassVerification({ provider: 'postgresql', format: 'sql', compression, env: {} });
  // As the backup operation does: the header is made before the dump starts.
  const encryption = await prepareEncryption([recipient]);
  const source = Buffer.isBuffer(dump) ? Readable.from([dump]) : dump();
  const stats = await writeArchive(source, file, { compression, contentTaps: inPass.taps, encryption });
  const plaintext = await inPass.finish(file, stats);
  await checkStoredAgeHeader(file, 1, plaintext);
  return { file, stats, plaintext };
}

/** Verifies `file` as if the catalog had recorded exactly these bytes, so only age's own authentication can catch a change. */
async function verifyAsRecorded(
  file: string,
  stats: ArchiveStats,
  identities: string[] | undefined,
): Promise<VerifyReport> {
  const bytes = await readFile(file);
  return verifyBackupFile({
    path: file,
    provider: 'postgresql',
    format: 'sql',
    compression: 'zstd',
    expected: {
      sizeBytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      contentSha256: stats.contentSha256,
    },
    env: {},
    encryption: { identities, recipients: 1, identityEnv: 'FABER_DB_AGE_IDENTITY' },
  });
}

describe('age stage: write path', () => {
  it('encrypts after compression, checks the plaintext in the same pass, and decrypts back to the same content', async () => {
    const dump = sqlDump(400_000);
    const { file, stats, plaintext } = await encryptedArchive('good.sql.zst.age', dump);
    expect(plaintext.problems).toEqual([]);
    expect(plaintext.checks).toEqual(
      expect.arrayContaining([
        'dump trailer present (dump completed)',
        'file checksum (sha256) matches',
        'age header well-formed (1 X25519 recipient)',
      ]),
    );
    expect(plaintext.checks.some((check) => check.startsWith('zstd stream decodes to the dump'))).toBe(true);
    expect(stats.contentSha256).toBe(createHash('sha256').update(dump).digest('hex'));
    expect(stats.sizeBytes).toBeGreaterThan(2 * AGE_CHUNK);
    const report = await verifyAsRecorded(file, stats, [identity]);
    expect(report).toMatchObject({ passed: true, problems: [] });
    expect(report.checks).toEqual(
      expect.arrayContaining([
        'age payload decrypts and authenticates',
        'decoded content checksum matches',
        'dump trailer present (dump completed)',
      ]),
    );
  });

  it('a dump tool that is done in milliseconds loses no byte (the stage attaches at once; execa drops unread output)', async () => {
    const dump = `-- PostgreSQL database dump\nSELECT 1;\n${TRAILER}`;
    for (let round = 0; round < 10; round++) {
      let tool: ReturnType<typeof execa> | undefined;
      const spawnTool = () => {
        tool = execa('printf', ['%s', dump], { stdout: 'pipe', buffer: false, encoding: 'buffer' });
        return tool.stdout as Readable;
      };
      const { stats, plaintext } = await encryptedArchive(`quick-${round}.sql.zst.age`, spawnTool, 'zstd');
      await tool;
      expect(stats.uncompressedBytes).toBe(Buffer.byteLength(dump));
      expect(plaintext.problems).toEqual([]);
    }
  });

  it('the in-pass check sees a dump that was cut short, though the backup holds no key', async () => {
    const { plaintext } = await encryptedArchive('cut.sql.zst.age', sqlDump(100_000, ''));
    expect(plaintext.problems).toEqual(['the dump has no completion trailer: it was cut short']);
  });
});

describe('age payload (node:crypto): what age itself reads', () => {
  // Around the 64 KiB chunk: empty, one byte, a chunk less one, exactly one and two chunks (the last
  // chunk is then full), one byte over; written in pieces that do not line up with chunks.
  const sizes = [0, 1, 65_535, 65_536, 65_537, 131_072, 200_000];

  async function encrypted(name: string, plaintext: Buffer, recipients: string[]): Promise<string> {
    const file = path.join(dir, name);
    const pieces = Array.from({ length: Math.ceil(plaintext.length / 7_777) }, (_, index) =>
      plaintext.subarray(index * 7_777, (index + 1) * 7_777),
    );
    const stage = createEncryptStage(await prepareEncryption(recipients));
    await pipeline(Readable.from(pieces), stage, createWriteStream(file));
    return file;
  }

  it.each(sizes)('%i bytes: the age CLI and age-encryption both decrypt exactly the plaintext', async (size) => {
    const plaintext = randomBytes(size);
    const file = await encrypted(`payload-${size}.age`, plaintext, [recipient]);
    const keyFile = path.join(dir, 'identity.txt');
    await writeFile(keyFile, `${identity}\n`, { mode: 0o600 });
    // Every byte as it came: execa would drop a final newline, which random bytes end with 1 time in 256.
    const cli = await execa('age', ['-d', '-i', keyFile, file], { encoding: 'buffer', stripFinalNewline: false });
    expect(Buffer.from(cli.stdout).equals(plaintext)).toBe(true);
    const decrypter = new Decrypter();
    decrypter.addIdentity(identity);
    expect(Buffer.from(await decrypter.decrypt(await readFile(file))).equals(plaintext)).toBe(true);
  });

  it.each(sizes)(
    '%i bytes encrypted by the age CLI: the decrypting stage reads exactly the plaintext',
    async (size) => {
      const plaintext = randomBytes(size);
      const file = path.join(dir, `by-cli-${size}.age`);
      await execa('age', ['-e', '-r', recipient, '-o', file], { input: plaintext });
      // As verify and restore do: the identities are loaded (and age-encryption with them) first.
      await loadIdentities({ type: 'age', recipients: [], identity_env: 'KEY' }, { KEY: identity });
      const ciphertext = await readFile(file);
      // Whole, in pieces smaller than a chunk, and in pieces of more than one chunk.
      for (const pieceSize of [ciphertext.length, 1_000, 150_001]) {
        const pieces = Array.from({ length: Math.ceil(ciphertext.length / pieceSize) }, (_, index) =>
          ciphertext.subarray(index * pieceSize, (index + 1) * pieceSize),
        );
        const chunks: Buffer[] = [];
        await pipeline(Readable.from(pieces), createDecryptStage([identity]), async (source) => {
          for await (const chunk of source) chunks.push(chunk as Buffer);
        });
        expect(Buffer.concat(chunks).equals(plaintext), `in pieces of ${pieceSize}`).toBe(true);
      }
    },
  );

  it('two recipients: each identity decrypts; a third is refused', async () => {
    const second = await generateX25519Identity();
    const plaintext = randomBytes(100_000);
    const file = await encrypted('two.age', plaintext, [recipient, await identityToRecipient(second)]);
    for (const key of [identity, second]) {
      const decrypter = new Decrypter();
      decrypter.addIdentity(key);
      expect(Buffer.from(await decrypter.decrypt(await readFile(file))).equals(plaintext)).toBe(true);
    }
    const stranger = new Decrypter();
    stranger.addIdentity(await generateX25519Identity());
    await expect(stranger.decrypt(await readFile(file))).rejects.toThrow(/no identity matched/i);
  });

  it('every file gets its own file key: the same plaintext twice gives different ciphertexts', async () => {
    const plaintext = randomBytes(70_000);
    const first = await readFile(await encrypted('same-1.age', plaintext, [recipient]));
    const second = await readFile(await encrypted('same-2.age', plaintext, [recipient]));
    expect(first.length).toBe(second.length);
    expect(first.equals(second)).toBe(false);
  });
});

describe('age stage: tampering and truncation', () => {
  let file: string;
  let stats: ArchiveStats;
  let original: Buffer;
  beforeAll(async () => {
    ({ file, stats } = await encryptedArchive('victim.sql.zst.age', sqlDump(200_000)));
    original = await readFile(file);
  });

  /** Every byte of the header and nonce, the bytes around each chunk boundary, the last bytes, and a spread in between. */
  function positions(length: number): number[] {
    const headerEnd = original.indexOf('\n--- ') + 1;
    const macEnd = original.indexOf('\n', headerEnd) + 1;
    const chosen = new Set<number>();
    for (let at = 0; at < macEnd + 16; at++) chosen.add(at);
    for (let boundary = macEnd + 16; boundary < length; boundary += AGE_CHUNK)
      for (const offset of [-1, 0, 1, 15, 16, 17]) chosen.add(boundary + offset);
    for (let at = length - 20; at < length; at++) chosen.add(at);
    for (let at = 0; at < length; at += 4999) chosen.add(at);
    return [...chosen].filter((at) => at >= 0 && at < length).sort((a, b) => a - b);
  }

  it('a flipped bit anywhere in the file fails verification with the identity, even when the recorded checksum matches', async () => {
    const tampered = path.join(dir, 'tampered.sql.zst.age');
    const passedAt: number[] = [];
    const checked = positions(original.length);
    for (const at of checked) {
      const bytes = Buffer.from(original);
      bytes[at] = (bytes[at] ?? 0) ^ 0x01;
      await writeFile(tampered, bytes);
      const report = await verifyAsRecorded(tampered, stats, [identity]);
      if (report.passed) passedAt.push(at);
      else expect(report.problems.join(' ')).toMatch(/age|does not decode/);
    }
    expect(checked.length).toBeGreaterThan(200);
    expect(passedAt).toEqual([]);
  });

  it('a file cut anywhere fails verification with the identity (also exactly at a chunk boundary)', async () => {
    const cut = path.join(dir, 'cut.sql.zst.age');
    const payloadStart = original.indexOf('\n', original.indexOf('\n--- ') + 1) + 1 + 16;
    expect(original.length).toBeGreaterThan(payloadStart + AGE_CHUNK);
    for (const length of [
      0,
      10,
      payloadStart - 16,
      payloadStart,
      payloadStart + AGE_CHUNK,
      original.length - 17,
      original.length - 1,
    ]) {
      await writeFile(cut, original.subarray(0, length));
      const report = await verifyAsRecorded(cut, stats, [identity]);
      expect(report.passed, `cut at ${length}`).toBe(false);
    }
  });

  it('without the identity: the checksum and the age header are checked, and it says the content was not decoded', async () => {
    const good = await verifyAsRecorded(file, stats, undefined);
    expect(good).toMatchObject({ passed: true, notes: [expect.stringContaining('not decoded')] });
    expect(good.checks).toContain('age header well-formed (1 X25519 recipient)');
    const cut = path.join(dir, 'header-only.age');
    await writeFile(cut, original.subarray(0, original.indexOf('\n', original.indexOf('\n--- ') + 1) + 1));
    expect((await verifyAsRecorded(cut, stats, undefined)).problems).toContain(
      'the age payload is missing or cut short',
    );
    const notAge = path.join(dir, 'not-age.age');
    await writeFile(notAge, 'hello, this is not an age file\n');
    expect((await verifyAsRecorded(notAge, stats, undefined)).problems).toContain(
      'not an age v1 file (no "age-encryption.org/v1" header)',
    );
  });
});

describe('recipients', () => {
  it('accepts age X25519 recipients and rejects typos, other key types and private keys', () => {
    expect(isX25519Recipient(recipient)).toBe(true);
    const typo = `${recipient.slice(0, 10)}${recipient[10] === 'q' ? 'p' : 'q'}${recipient.slice(11)}`;
    expect(isX25519Recipient(typo)).toBe(false);
    expect(isX25519Recipient(recipient.toUpperCase())).toBe(false);
    expect(isX25519Recipient(identity)).toBe(false);
    expect(isX25519Recipient('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG')).toBe(false);
  });
});
