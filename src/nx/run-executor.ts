import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { ExecutorContext } from '@nx/devkit';
import type { OperationContext } from '../operations/context.ts';
import type { OperationResult } from '../output/result.ts';
import { consoleReporter, silentReporter } from '../output/reporter.ts';
import { failure } from '../output/result.ts';
import { appendStepSummary } from '../output/step-summary.ts';
import { BANNER_TITLE } from '../operations/run.ts';
import { missingConfiguration } from './requested-configuration.ts';

/** Options every executor understands. */
export interface CommonExecutorOptions {
  environment?: string;
  json?: boolean;
  outputFile?: string;
  verbose?: boolean;
}

/**
 * The whole of an executor: build the operation context from Nx's, run the operation, print the
 * result (banners, or one line of JSON with --json), write --outputFile, map to `{ success }`.
 */
export async function runExecutor<O extends CommonExecutorOptions>(
  options: O,
  context: ExecutorContext,
  operation: (
    options: O & { environment: string | undefined },
    ctx: OperationContext,
  ) => Promise<OperationResult<unknown>>,
): Promise<{ success: boolean }> {
  const ctx = operationContextFromNx(context, options);
  const environment = options.environment ?? context.configurationName;
  const dropped = environment === undefined ? missingConfiguration(context, process.env) : undefined;
  if (dropped) ctx.reporter.fail(BANNER_TITLE, dropped.message, dropped.suggestions, dropped.code);
  const scope = { operation: context.targetName ?? 'run', project: ctx.projectName };
  const result = dropped ? failure(scope, dropped) : await operation({ ...options, environment }, ctx);
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  if (options.outputFile) {
    const file = path.resolve(context.root, options.outputFile);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  }
  await appendStepSummary(result, process.env, (message) => ctx.reporter.warn(message));
  return { success: result.status === 'success' };
}

export function operationContextFromNx(context: ExecutorContext, options: CommonExecutorOptions): OperationContext {
  const projectName = context.projectName ?? 'workspace';
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;
  return {
    workspaceRoot: context.root,
    projectName,
    projectRoot: context.projectsConfigurations?.projects[projectName]?.root,
    env: process.env,
    reporter: options.json
      ? silentReporter()
      : consoleReporter({ out: process.stdout, interactive: Boolean(process.stdout.isTTY) }),
    interactive,
    verbose: Boolean(options.verbose || context.isVerbose),
    confirm: askOnTerminal,
    taskId: context.targetName
      ? [projectName, context.targetName, context.configurationName].filter(Boolean).join(':')
      : undefined,
  };
}

/** y/N, or the exact word when `expected` is given (typed confirmation for protected restores). */
export async function askOnTerminal(question: string, expected?: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (
      await prompt.question(expected ? `${question}\nType "${expected}" to continue: ` : `${question} [y/N] `)
    ).trim();
    return expected ? answer === expected : /^y(es)?$/i.test(answer);
  } finally {
    prompt.close();
  }
}
