import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

interface PackFile {
  path: string;
}

function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const [pack] = JSON.parse(out) as Array<{ files: PackFile[] }>;
  return new Set((pack?.files ?? []).map((file) => file.path));
}

function resolveEntry(packed: Set<string>, entry: string): boolean {
  const file = path.posix.normalize(entry.split('#')[0] ?? entry);
  return [file, `${file}.js`, `${file}.json`, `${file}/index.js`].some((candidate) => packed.has(candidate));
}

describe('npm package', () => {
  const packed = packedFiles();

  it('ships every file that executors.json and generators.json name', () => {
    const manifests = ['executors.json', 'generators.json'];
    const missing: string[] = [];
    for (const manifest of manifests) {
      expect(packed.has(manifest)).toBe(true);
      const json = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, Record<string, Record<string, string>>>;
      for (const [name, entry] of Object.entries(json.executors ?? json.generators ?? {})) {
        for (const key of ['implementation', 'factory', 'schema']) {
          const value = entry[key];
          if (value && !resolveEntry(packed, value)) missing.push(`${manifest} ${name}.${key}: ${value}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('ships the JSON Schemas and the API entry point, and no tests or sources maps of tests', () => {
    expect(packed.has('schemas/config.schema.json')).toBe(true);
    expect(packed.has('schemas/catalog.schema.json')).toBe(true);
    expect(packed.has('dist/src/index.js')).toBe(true);
    expect([...packed].filter((file) => file.startsWith('test/') || file.includes('.test.'))).toEqual([]);
  });
});
