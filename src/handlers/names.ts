import { randomBytes } from 'node:crypto';

/** 8 lower-case hex characters. */
export function randomTag(): string {
  return randomBytes(4).toString('hex');
}

/** `20240131235959` in UTC: sortable and valid in every identifier. */
export function timestampTag(date = new Date()): string {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * `base + suffix` cut to `maxBytes` of UTF-8 by shortening `base` (never the suffix, which makes
 * the name unique), without splitting a character. PostgreSQL allows 63 bytes, MySQL 64.
 */
export function siblingName(base: string, suffix: string, maxBytes: number): string {
  const room = maxBytes - Buffer.byteLength(suffix);
  if (room < 1) throw new Error(`Suffix "${suffix}" leaves no room in a ${maxBytes}-byte name`);
  if (Buffer.byteLength(base) <= room) return base + suffix;
  let kept = '';
  for (const character of base) {
    if (Buffer.byteLength(kept + character) > room) break;
    kept += character;
  }
  return kept + suffix;
}

/**
 * The name of a scratch database (or SQLite file) beside `live`, for a restore or a verify drill:
 * it carries SCRATCH_MARKER, and a random tag keeps two runs apart.
 */
export function scratchName(live: string, purpose: 'verify' | 'restore', maxBytes = Number.POSITIVE_INFINITY): string {
  return siblingName(live, `__faber_${purpose}_${randomTag()}`, maxBytes);
}

/** The redacted URL of another database on the same server, for messages. */
export function urlWithDatabase(redactedUrl: string, database: string): string {
  try {
    const url = new URL(redactedUrl);
    url.pathname = '/' + encodeURIComponent(database);
    return url.toString();
  } catch {
    return `${redactedUrl} (database ${database})`;
  }
}

/** Marks the databases and files handlers create, so they may be dropped forcefully. */
export const SCRATCH_MARKER = /__faber_(verify|restore|old)_/;
