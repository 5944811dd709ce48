import { describe, expect, it } from 'vitest';
import { staleFiles } from '../../scripts/generate.ts';

describe('generated files', () => {
  it('JSON Schemas, option types and version are up to date (npm run generate)', async () => {
    expect(await staleFiles()).toEqual([]);
  });
});
