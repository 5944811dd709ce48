import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const madeDirectories: string[] = [];

/** A fresh directory under the system temp directory, removed when the test file ends (test/support/cleanup.ts). */
export async function tempDirectory(prefix: string): Promise<string> {
  const directory = await mkdtemp(path.join(tmpdir(), prefix));
  madeDirectories.push(directory);
  return directory;
}

export async function removeTempDirectories(): Promise<void> {
  for (const directory of madeDirectories.splice(0)) await rm(directory, { recursive: true, force: true });
}
