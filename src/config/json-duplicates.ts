/**
 * JSON.parse keeps the last of two equal keys without a word; a config with a doubled key means
 * someone's setting is silently ignored. Returns the JSON path of the first duplicate, if any.
 * Assumes the text already parsed as JSON.
 */
export function findDuplicateKey(text: string): string | undefined {
  const frames: Array<{ keys: Set<string> | undefined; path: string[]; index: number }> = [];
  let pendingKey: string | undefined;
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      const end = stringEnd(text, i);
      const value = JSON.parse(text.slice(i, end + 1)) as string;
      i = end + 1;
      const frame = frames[frames.length - 1];
      if (frame?.keys && isKeyPosition(text, i)) {
        const where = [...frame.path, value].join('.');
        if (frame.keys.has(value)) return where;
        frame.keys.add(value);
        pendingKey = value;
      }
      continue;
    }
    if (ch === '{' || ch === '[') {
      const parent = frames[frames.length - 1];
      const segment = parent ? (parent.keys ? (pendingKey ?? '') : String(parent.index)) : undefined;
      const path = parent && segment !== undefined ? [...parent.path, segment] : [];
      frames.push({ keys: ch === '{' ? new Set() : undefined, path, index: 0 });
    } else if (ch === '}' || ch === ']') {
      frames.pop();
    } else if (ch === ',') {
      const frame = frames[frames.length - 1];
      if (frame && !frame.keys) frame.index++;
    }
    i++;
  }
  return undefined;
}

function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

function isKeyPosition(text: string, after: number): boolean {
  let i = after;
  while (i < text.length && /\s/.test(text[i] ?? '')) i++;
  return text[i] === ':';
}
