/**
 * tsc never emits .d.ts sources: the generated option types (schema.d.ts) that the
 * compiled executors and generators import are copied next to them in dist/.
 */
import { copyFileSync, globSync, mkdirSync } from 'node:fs';
import path from 'node:path';

for (const file of globSync('{executors,generators}/*/schema.d.ts')) {
  const target = path.join('dist', file);
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(file, target);
}
