import { open } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { describeRecipients, recipientFingerprint } from '../config/age-recipients.ts';
import { FaberError } from '../output/errors.ts';
import {
  AgePayloadDecryptor,
  AgePayloadEncryptor,
  AGE_TAG_BYTES,
  findHeaderEnd,
  MAX_HEADER_BYTES,
  PAYLOAD_NONCE_BYTES,
  payloadKey as derivePayloadKey,
} from './age-payload.ts';

/**
 * Client-side encryption in the age v1 format (X25519 recipients), applied after compression, so
 * `age -d -i key.txt <id>.sql.zst.age | zstd -d` recovers the dump without this plugin. Keys,
 * headers and decryption are age's own JavaScript implementation (`age-encryption`, by age's
 * author); the payload of a backup is encrypted by node:crypto (age-payload.ts). This file adapts
 * age's web streams to Node streams and checks keys before they are used.
 */

export const AGE_SUFFIX = '.age';

type AgeModule = typeof import('age-encryption');
let ageModule: AgeModule | undefined;

/**
 * age-encryption and its ciphers add ~9 MB of memory and ~60 ms to every process that imports
 * them, so they load only for encrypted backups: by prepareEncryption and loadIdentities.
 */
async function loadAge(): Promise<AgeModule> {
  ageModule ??= await import('age-encryption');
  return ageModule;
}

function loadedAge(): AgeModule {
  if (!ageModule)
    throw new Error('age-encryption is not loaded yet: load the identities before making a decrypting stage');
  return ageModule;
}

const AGE_VERSION_LINE = 'age-encryption.org/v1';
const X25519_STANZA = '-> X25519 ';
/** The nonce and one authenticated (possibly empty) chunk's tag. */
const MIN_PAYLOAD_BYTES = PAYLOAD_NONCE_BYTES + AGE_TAG_BYTES;

/** What a manifest records about an encrypted backup: never a key, only who can read it. */
export interface RecordedEncryption {
  type: 'age';
  /** Fingerprints of the recipients (see recipientFingerprint). */
  recipients: string[];
  /** The variable the identity is read from when the backup is read. */
  identity_env: string;
}

/** A file's age header (with the payload nonce after it) and its payload key: one backup's, used once. */
export interface PreparedEncryption {
  readonly prefix: Buffer;
  readonly payloadKey: Buffer;
}

/**
 * Makes the header for `recipients` with age-encryption, by encrypting an empty file: the header,
 * the payload nonce, one empty chunk. The payload key is derived from the file key as age does
 * (HKDF-SHA-256, the nonce as salt, "payload" as info); age-encryption hands the file key to each
 * recipient to wrap (its `Recipient` interface), and one more recipient that adds no stanza keeps
 * it for that. Asynchronous (X25519): done before the dump starts.
 */
export async function prepareEncryption(recipients: readonly string[]): Promise<PreparedEncryption> {
  const encrypter = new (await loadAge()).Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  let fileKey: Uint8Array | undefined;
  encrypter.addRecipient({
    wrapFileKey: (key) => {
      fileKey = Uint8Array.from(key);
      return [];
    },
  });
  const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const headerEnd = findHeaderEnd(empty);
  if (!fileKey || headerEnd < 0 || empty.length !== headerEnd + MIN_PAYLOAD_BYTES)
    throw new Error('age-encryption wrote an unexpected file: no header, file key or payload nonce');
  const prefix = empty.subarray(0, headerEnd + PAYLOAD_NONCE_BYTES);
  const nonce = prefix.subarray(headerEnd);
  const payloadKey = derivePayloadKey(fileKey, nonce);
  fileKey.fill(0);
  return { prefix, payloadKey };
}

/** The encrypting stage, for the compressed bytes: made synchronously, so a pipeline can attach to a dump tool's output at once. */
export function createEncryptStage(prepared: PreparedEncryption): Transform {
  return new AgePayloadEncryptor(prepared.prefix, prepared.payloadKey);
}

/**
 * The decrypting stage. The header is read from the first bytes that arrive; an identity that
 * matches none of the recipients, a changed header or any altered or missing byte of the payload
 * fails the stream (age authenticates every 64 KB chunk and marks the last one). The identities
 * come from loadIdentities, which loads age-encryption: the stage is then made synchronously.
 */
export function createDecryptStage(identities: readonly string[]): Transform {
  const decrypter = new (loadedAge().Decrypter)();
  for (const identity of identities) decrypter.addIdentity(identity);
  return new AgePayloadDecryptor((header) => decrypter.decryptHeader(header), explainDecryptFailure);
}

/** age-encryption's messages, in words that say what happened to the file. */
export function explainDecryptFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/no identity matched/i.test(message))
    return 'the identity matches none of the recipients the file was encrypted for';
  if (/invalid tag|header HMAC|final chunk/i.test(message))
    return `age authentication failed: the file was altered or truncated (${message})`;
  return `age decryption failed: ${message}`;
}

/** Parsed from the first bytes of a file, without any key. */
export interface AgeHeaderFacts {
  valid: boolean;
  x25519Stanzas: number;
  otherStanzas: number;
  problem?: string;
}

/**
 * Passes bytes through unchanged and checks that they start with a well-formed age v1 header
 * (version line, recipient stanzas, MAC line) followed by a payload. It cannot check the MAC or
 * the payload's authentication: both need the identity.
 */
export class AgeHeaderTap extends Transform {
  #head = Buffer.alloc(0);
  #total = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#total += chunk.length;
    if (this.#head.length < MAX_HEADER_BYTES)
      this.#head = Buffer.concat([this.#head, chunk.subarray(0, MAX_HEADER_BYTES - this.#head.length)]);
    callback(null, chunk);
  }

  facts(): AgeHeaderFacts {
    return parseAgeHeader(this.#head, this.#total);
  }
}

/** The header facts from a file's first bytes (up to 64 KB) and its total size. */
export function parseAgeHeader(head: Buffer, totalBytes: number): AgeHeaderFacts {
  const facts: AgeHeaderFacts = { valid: false, x25519Stanzas: 0, otherStanzas: 0 };
  const headerEnd = findHeaderEnd(head);
  if (!head.subarray(0, AGE_VERSION_LINE.length + 1).equals(Buffer.from(`${AGE_VERSION_LINE}\n`)))
    return { ...facts, problem: 'not an age v1 file (no "age-encryption.org/v1" header)' };
  if (headerEnd < 0)
    return { ...facts, problem: 'the age header has no MAC line: the file is cut short or not an age file' };
  for (const line of head.subarray(0, headerEnd).toString('latin1').split('\n')) {
    if (line.startsWith(X25519_STANZA)) facts.x25519Stanzas++;
    else if (line.startsWith('-> ')) facts.otherStanzas++;
  }
  if (totalBytes - headerEnd < MIN_PAYLOAD_BYTES)
    return { ...facts, problem: 'the age payload is missing or cut short' };
  return { ...facts, valid: true };
}

/** Adds what the header says to a report: well-formed, and for as many X25519 recipients as were recorded. */
export function reportAgeHeader(
  facts: AgeHeaderFacts,
  recipients: number,
  report: { checks: string[]; problems: string[] },
): void {
  if (facts.problem) report.problems.push(facts.problem);
  else if (facts.x25519Stanzas !== recipients || facts.otherStanzas > 0) {
    report.problems.push(
      `the age header has ${facts.x25519Stanzas} X25519 recipient stanzas (and ${facts.otherStanzas} others), ${recipients} recipients were recorded`,
    );
  } else
    report.checks.push(
      `age header well-formed (${facts.x25519Stanzas} X25519 recipient${facts.x25519Stanzas === 1 ? '' : 's'})`,
    );
}

/** The header check of a stored file (a local path, or an object streamed from the store), read from its first bytes. */
export async function checkStoredAgeHeader(
  file: string | { size: number | undefined; open(): Promise<Readable> },
  recipients: number,
  report: { checks: string[]; problems: string[]; passed: boolean },
): Promise<void> {
  const { head, size } =
    typeof file === 'string'
      ? await localHead(file)
      : { head: await streamHead(await file.open()), size: file.size ?? 0 };
  reportAgeHeader(parseAgeHeader(head, size), recipients, report);
  report.passed = report.problems.length === 0;
}

async function localHead(file: string): Promise<{ head: Buffer; size: number }> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(MAX_HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return { head: head.subarray(0, bytesRead), size: (await handle.stat()).size };
  } finally {
    await handle.close();
  }
}

/** The first MAX_HEADER_BYTES of a stream; the rest is not downloaded. */
async function streamHead(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(Buffer.from(chunk as Uint8Array));
      length += (chunk as Uint8Array).length;
      if (length >= MAX_HEADER_BYTES) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, MAX_HEADER_BYTES);
}

/** The identities in a backup's identity variable, and the recipients (fingerprints) they belong to. */
export interface LoadedIdentities {
  identities: string[];
  fingerprints: string[];
}

/**
 * Reads the variable the backup's `identity_env` names: undefined when it is not set,
 * ENCRYPTION_KEY_WRONG when it holds anything but age X25519 identities.
 */
export async function loadIdentities(
  recorded: RecordedEncryption,
  env: NodeJS.ProcessEnv,
): Promise<LoadedIdentities | undefined> {
  const value = env[recorded.identity_env];
  if (value === undefined || value.trim() === '') return undefined;
  const identities = identityLines(value);
  const fingerprints = await Promise.all(
    identities.map((identity) => identityFingerprint(identity, recorded.identity_env)),
  );
  return { identities, fingerprints };
}

export function canDecrypt(loaded: LoadedIdentities, recorded: RecordedEncryption): boolean {
  return loaded.fingerprints.some((fingerprint) => recorded.recipients.includes(fingerprint));
}

export function describeMismatch(loaded: LoadedIdentities, recorded: RecordedEncryption): string {
  return `the identity in $${recorded.identity_env} belongs to ${describeRecipients(loaded.fingerprints)}, the backup was encrypted for ${describeRecipients(recorded.recipients)}`;
}

/** The identities for operations that cannot go on without them (restore, deep verify): ENCRYPTION_KEY_MISSING or _WRONG otherwise. */
export async function requireIdentities(
  recorded: RecordedEncryption,
  env: NodeJS.ProcessEnv,
  backupId: string,
  operation: string,
): Promise<string[]> {
  const loaded = await loadIdentities(recorded, env);
  if (!loaded) {
    throw new FaberError(
      'ENCRYPTION_KEY_MISSING',
      `${backupId} is encrypted and ${operation} needs its private key: $${recorded.identity_env} is not set`,
      {
        result: { backup_id: backupId, identity_env: recorded.identity_env, backup_recipients: recorded.recipients },
        suggestions: [
          `Set ${recorded.identity_env} to the age identity (AGE-SECRET-KEY-1…) of one of its recipients (${describeRecipients(recorded.recipients)}), e.g. from your secret store or a .env file that is not committed`,
          'Without the plugin: age -d -i key.txt <file>.age | zstd -d (see the README, "Recovery without the plugin")',
        ],
      },
    );
  }
  if (canDecrypt(loaded, recorded)) return loaded.identities;
  throw new FaberError(
    'ENCRYPTION_KEY_WRONG',
    `${backupId} cannot be decrypted: ${describeMismatch(loaded, recorded)}`,
    {
      result: {
        backup_id: backupId,
        identity_env: recorded.identity_env,
        identity_recipients: loaded.fingerprints,
        backup_recipients: recorded.recipients,
      },
      suggestions: [
        `Set $${recorded.identity_env} to the private key of one of the backup's recipients (list-backups shows them; the README's "Encryption" section shows how to match a key)`,
        'A key rotated out of backup.encryption.recipients still decrypts the backups written while it was listed: keep old identities until those backups expire (the variable may hold several, one per line)',
      ],
    },
  );
}

/** The variable may hold one identity or an age identity file (comments, one key per line). */
function identityLines(value: string): string[] {
  return value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

async function identityFingerprint(identity: string, variable: string): Promise<string> {
  if (!identity.startsWith('AGE-SECRET-KEY-1')) throw wrongIdentityType(identity, variable);
  try {
    return recipientFingerprint(await (await loadAge()).identityToRecipient(identity));
  } catch {
    // Not kept as the cause: the decoder's message quotes the string, which is a secret.
    throw wrongIdentityType(identity, variable);
  }
}

/** Names what the value looks like, never the value. */
function wrongIdentityType(identity: string, variable: string): FaberError {
  const looksLike = identity.startsWith('age1')
    ? 'a public key (recipient), not the private key'
    : identity.startsWith('AGE-SECRET-KEY-PQ-1')
      ? 'a post-quantum age identity; backups use X25519 keys'
      : identity.startsWith('AGE-PLUGIN-')
        ? 'an age plugin identity, which is not supported'
        : /BEGIN .*PRIVATE KEY|^ssh-/.test(identity)
          ? 'an SSH key, which is not supported'
          : identity.startsWith('AGE-SECRET-KEY-1')
            ? 'a malformed age identity (bad checksum or length)'
            : 'not an age identity';
  return new FaberError(
    'ENCRYPTION_KEY_WRONG',
    `$${variable} does not hold an age X25519 identity: it holds ${looksLike}`,
    {
      result: { identity_env: variable },
      suggestions: [
        `Set ${variable} to the line starting with AGE-SECRET-KEY-1 from the key file (age-keygen -o key.txt writes one)`,
        `Or to the whole key file: export ${variable}="$(cat key.txt)"`,
      ],
    },
  );
}
