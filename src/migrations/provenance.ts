import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Provenance } from '../catalog/schema.ts';

const GIT_TIMEOUT_MS = 5000;

/** The commit, CI run and Nx task a backup was taken from; each null when it cannot be told. */
export async function collectProvenance(
  env: NodeJS.ProcessEnv,
  workspaceRoot: string,
  nxTask: string | undefined,
): Promise<Provenance> {
  return { git_commit: await gitCommit(env, workspaceRoot), ci_run: ciRun(env), nx_task: nxTask ?? null };
}

async function gitCommit(env: NodeJS.ProcessEnv, workspaceRoot: string): Promise<string | null> {
  const fromCi = env.GITHUB_SHA ?? env.CI_COMMIT_SHA;
  if (fromCi) return fromCi;
  try {
    const { stdout } = await promisify(execFile)('git', ['rev-parse', 'HEAD'], {
      cwd: workspaceRoot,
      env,
      timeout: GIT_TIMEOUT_MS,
    });
    const commit = stdout.trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : null;
  } catch {
    // Not a git checkout, no commit yet, or no git: the backup does not depend on it.
    return null;
  }
}

export function ciRun(env: NodeJS.ProcessEnv): Provenance['ci_run'] {
  if (env.GITHUB_RUN_ID) {
    const url =
      env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY
        ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
        : null;
    return { provider: 'github-actions', id: env.GITHUB_RUN_ID, url };
  }
  const id = env.CI_JOB_ID ?? env.CI_PIPELINE_ID ?? env.CI_BUILD_ID ?? env.CI_RUN_ID;
  if (!id) return null;
  const url = env.CI_JOB_URL ?? env.CI_PIPELINE_URL ?? env.CI_BUILD_URL ?? env.CI_RUN_URL ?? null;
  return { provider: env.GITLAB_CI ? 'gitlab' : 'ci', id, url };
}
