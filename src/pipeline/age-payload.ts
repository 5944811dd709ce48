import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { freeBuffer, freeIfHandedOver, handOver } from '../util/spent-buffers.ts';

/**
 * The payload of an age v1 file, encrypted and decrypted by node:crypto (OpenSSL's
 * ChaCha20-Poly1305, ~1.8 GB/s here) instead of age-encryption's JavaScript cipher (~200 MB/s),
 * which cost a reference backup about 1.5 s of CPU. age's STREAM construction (age-encryption.org/v1, "Payload"): the plaintext
 * in 64 KiB chunks, each sealed with the payload key and a 12-byte nonce: an 11-byte big-endian
 * chunk counter from 0, then 1 for the last chunk and 0 for the others. The last chunk is empty
 * only when the whole plaintext is. Headers and file keys are age-encryption's (encryption.ts);
 * age's own tools read what this writes, and this reads what they write (tested with the age CLI).
 */
export const AGE_PAYLOAD_CHUNK = 64 * 1024;
/** Poly1305's tag after each chunk. */
export const AGE_TAG_BYTES = 16;
const SEALED_CHUNK = AGE_PAYLOAD_CHUNK + AGE_TAG_BYTES;
/** Sixteen sealed chunks: a sealed chunk's two parts always fit whole into what is left of a block. */
const OUTPUT_BLOCK = 16 * SEALED_CHUNK;
/** The random nonce between the header and the first chunk: the payload key's salt. */
export const PAYLOAD_NONCE_BYTES = 16;
/** An age header is a few hundred bytes per recipient; anything this long without its MAC line is not one. */
export const MAX_HEADER_BYTES = 64 * 1024;

/** age's payload key: HKDF-SHA-256 of the file key, the payload nonce as salt, "payload" as info. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Offset just past the header's `--- <mac>` line, or -1 while it has not arrived. */
export function findHeaderEnd(head: Buffer): number {
  const macLine = head.indexOf('\n--- ');
  if (macLine < 0) return -1;
  const lineEnd = head.indexOf('\n', macLine + 1);
  return lineEnd < 0 ? -1 : lineEnd + 1;
}

export class AgePayloadEncryptor extends Transform {
  readonly #prefix: Buffer;
  readonly #key: Buffer;
  readonly #plain = Buffer.allocUnsafe(AGE_PAYLOAD_CHUNK);
  #filled = 0;
  #counter = 0;
  #started = false;
  /**
   * Sealed chunks are gathered into ~1 MB blocks before they go on: passed on one by one (two
   * buffers per 64 KiB), the stages and the file write after this one cost more than the cipher.
   */
  #out: Buffer | undefined;
  #outBytes = 0;

  /** `prefix`: the header and the payload nonce, written first; `key`: the payload key (zeroed once the stream is done). */
  constructor(prefix: Buffer, key: Buffer) {
    super({ highWaterMark: 1024 * 1024 });
    this.#prefix = prefix;
    this.#key = key;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start();
    for (let offset = 0; offset < chunk.length;) {
      // A full chunk is sealed only once more bytes follow: the last one carries the last-chunk flag.
      if (this.#filled === AGE_PAYLOAD_CHUNK) this.#seal(false);
      const copied = chunk.copy(this.#plain, this.#filled, offset);
      this.#filled += copied;
      offset += copied;
    }
    // Copied: when this was the compressor's, nothing reads it after this stage.
    freeIfHandedOver(chunk);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.#start();
    this.#seal(true);
    this.#pushOut();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#key.fill(0);
    this.#plain.fill(0);
    callback(error);
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.push(this.#prefix);
  }

  #seal(last: boolean): void {
    const cipher = createCipheriv('chacha20-poly1305', this.#key, chunkNonce(this.#counter, last), {
      authTagLength: AGE_TAG_BYTES,
    });
    const sealed = cipher.update(this.#plain.subarray(0, this.#filled));
    this.#output(sealed);
    // node:crypto made it for this call alone, and it has been copied.
    if (sealed.byteLength === sealed.buffer.byteLength) freeBuffer(sealed);
    cipher.final();
    this.#output(cipher.getAuthTag());
    this.#counter += 1;
    this.#filled = 0;
  }

  #output(bytes: Buffer): void {
    this.#out ??= Buffer.allocUnsafe(OUTPUT_BLOCK);
    bytes.copy(this.#out, this.#outBytes);
    this.#outBytes += bytes.length;
    if (this.#outBytes === OUTPUT_BLOCK) this.#pushOut();
  }

  #pushOut(): void {
    if (this.#out && this.#outBytes > 0) {
      const block = this.#out.subarray(0, this.#outBytes);
      handOver(block);
      this.push(block);
    }
    this.#out = undefined;
    this.#outBytes = 0;
  }
}

/**
 * Reads an age v1 file: the header (its file key from `unwrapFileKey`, which checks the header's
 * MAC), the payload nonce, then the chunks. A chunk is opened as the last one only at the end of
 * the input, so a file cut at a chunk boundary fails (its new last chunk lacks the flag), as does
 * any changed byte (Poly1305 tag) or an empty last chunk after others.
 */
export class AgePayloadDecryptor extends Transform {
  readonly #unwrapFileKey: (header: Buffer) => Promise<Uint8Array>;
  readonly #explain: (error: unknown) => string;
  #head: Buffer | undefined = Buffer.alloc(0);
  #key: Buffer | undefined;
  /** Ciphertext not yet opened (up to one sealed chunk): the last chunk is known only at the end. */
  readonly #staged = Buffer.allocUnsafe(SEALED_CHUNK);
  #stagedBytes = 0;
  #counter = 0;

  /** `explain` words a failure for people (the stream fails with its text, the original as the cause). */
  constructor(unwrapFileKey: (header: Buffer) => Promise<Uint8Array>, explain: (error: unknown) => string) {
    super({ highWaterMark: 1024 * 1024 });
    this.#unwrapFileKey = unwrapFileKey;
    this.#explain = explain;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const callback = this.#explained(done);
    if (this.#head === undefined) return callback(this.#open(chunk));
    this.#head = Buffer.concat([this.#head, chunk]);
    const headerEnd = findHeaderEnd(this.#head.subarray(0, MAX_HEADER_BYTES));
    if (headerEnd < 0) {
      if (this.#head.length >= MAX_HEADER_BYTES) return callback(new Error('not an age file: no header MAC line'));
      return callback();
    }
    if (this.#head.length < headerEnd + PAYLOAD_NONCE_BYTES) return callback();
    const head = this.#head;
    this.#head = undefined;
    this.#unwrapFileKey(head.subarray(0, headerEnd)).then(
      (fileKey) => {
        this.#key = payloadKey(fileKey, head.subarray(headerEnd, headerEnd + PAYLOAD_NONCE_BYTES));
        callback(this.#open(head.subarray(headerEnd + PAYLOAD_NONCE_BYTES)));
      },
      (error: unknown) => callback(error as Error),
    );
  }

  override _flush(done: TransformCallback): void {
    const callback = this.#explained(done);
    if (this.#head !== undefined) return callback(new Error('age file truncated: it ends inside the header'));
    if (this.#stagedBytes < AGE_TAG_BYTES)
      return callback(new Error('age file truncated: the final chunk is missing or too short'));
    if (this.#stagedBytes === AGE_TAG_BYTES && this.#counter > 0)
      return callback(new Error('age file invalid: the final chunk is empty'));
    callback(this.#unseal(this.#staged.subarray(0, this.#stagedBytes), true));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#key?.fill(0);
    callback(error);
  }

  #explained(callback: TransformCallback): (error?: Error | null) => void {
    return (error) => callback(error ? new Error(this.#explain(error), { cause: error }) : null);
  }

  /**
   * Opens every chunk that more ciphertext follows, in place where a whole one is in `ciphertext`;
   * copies the rest into the staging buffer (the writer may reuse its buffers).
   */
  #open(ciphertext: Buffer): Error | undefined {
    for (let offset = 0; offset < ciphertext.length;) {
      let failure: Error | undefined;
      if (this.#stagedBytes === SEALED_CHUNK) {
        failure = this.#unseal(this.#staged, false);
        this.#stagedBytes = 0;
      } else if (this.#stagedBytes === 0 && ciphertext.length - offset > SEALED_CHUNK) {
        failure = this.#unseal(ciphertext.subarray(offset, offset + SEALED_CHUNK), false);
        offset += SEALED_CHUNK;
      } else {
        const copied = ciphertext.copy(this.#staged, this.#stagedBytes, offset);
        this.#stagedBytes += copied;
        offset += copied;
      }
      if (failure) return failure;
    }
    return undefined;
  }

  #unseal(sealed: Buffer, last: boolean): Error | undefined {
    const decipher = createDecipheriv('chacha20-poly1305', this.#key!, chunkNonce(this.#counter, last), {
      authTagLength: AGE_TAG_BYTES,
    });
    decipher.setAuthTag(sealed.subarray(sealed.length - AGE_TAG_BYTES));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - AGE_TAG_BYTES));
    try {
      decipher.final();
    } catch {
      return new Error(
        `invalid tag: payload chunk ${this.#counter} does not authenticate${last ? ' as the final chunk' : ''}`,
      );
    }
    // Read next by the decoder, or with no compression by the last stage: either frees it.
    handOver(plaintext);
    this.push(plaintext);
    this.#counter += 1;
    return undefined;
  }
}
