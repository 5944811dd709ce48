import { describe, expect, it } from 'vitest';
import type { Sample } from '../../bench/cases.ts';
import { phasesTable, type CaseSummary } from '../../bench/report.ts';

function sample(detail: Record<string, number>): Sample {
  return { wallMs: 1, sizeBytes: null, peakRssBytes: null, cpuSeconds: null, detail };
}

function summary(label: string, samples: Sample[]): CaseSummary {
  return {
    id: label,
    group: 'g',
    label,
    baseline: null,
    runs: samples.length,
    wallMs: null,
    ratio: null,
    sizeBytes: null,
    peakRssBytes: null,
    cpuSeconds: null,
    error: null,
    samples,
  };
}

const steps = (base: number) => ({
  beforeDumpMs: base,
  firstBytesMs: base + 1,
  dumpMs: base + 2,
  rereadMs: base + 3,
  recordMs: base + 4,
});

describe('phasesTable (where an API backup spends its time, from operation-child.mjs)', () => {
  it('prints the median of each step for the cases that report steps, and leaves the others out', () => {
    const table = phasesTable([
      summary('backup A', [sample(steps(10)), sample(steps(30)), sample(steps(20))]),
      summary('raw tool', [sample({ toolCpuSeconds: 1 })]),
    ]);
    const lines = table?.split('\n') ?? [];
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('| backup A | 20 | 21 | 22 | 23 | 24 |');
  });

  it('is null when no case reports its steps', () => {
    expect(phasesTable([summary('raw tool', [sample({ processMs: 5 })])])).toBeNull();
  });
});
