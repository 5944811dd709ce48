import { defineConfig } from 'vitest/config';

/**
 * Peak-memory measurements run on their own, after everything else: V8 frees dead buffers later
 * when other test processes keep the two cores busy, and the peak then says as much about the
 * neighbours as about the code (the 1 GiB S3 backup measured 165-202 MB beside other files).
 */
const MEMORY_TESTS = ['test/storage/s3-memory.test.ts', 'test/pipeline/archive-memory.test.ts'];

export default defineConfig({
  test: {
    // Real databases and real child processes: generous timeouts, two workers for two cores.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/cleanup.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: MEMORY_TESTS, sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'memory', include: MEMORY_TESTS, sequence: { groupOrder: 1 } } },
    ],
  },
});
