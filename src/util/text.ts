/**
 * A value read from a database row or a JSON document, as text: strings as they are, numbers, bigints and
 * booleans as `String` writes them, null and undefined as '', anything else as JSON (never "[object Object]").
 */
export function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}
