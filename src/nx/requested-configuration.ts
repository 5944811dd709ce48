import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ExecutorContext } from '@nx/devkit';
import { CONFIG_RELATIVE_PATH } from '../config/paths.ts';
import { FaberError } from '../output/errors.ts';
import { PACKAGE_NAME } from '../version.ts';

/**
 * `nx run billing:backup:staging` when the target has no `staging` configuration: Nx runs the
 * target without a configuration and tells the executor nothing (no configurationName, no
 * NX_TASK_TARGET_CONFIGURATION). The command line of the nx process that started the task still
 * says what was asked for; where it can be read (Linux /proc), the executor refuses with the
 * configuration that was asked for and how to add it.
 */
export function missingConfiguration(
  context: ExecutorContext,
  env: NodeJS.ProcessEnv,
  commandLine = nxCommandLine(env),
): FaberError | undefined {
  if (context.configurationName || env['NX_TASK_TARGET_CONFIGURATION']) return undefined;
  const project = context.projectName;
  const target = context.targetName;
  if (!project || !target || !commandLine) return undefined;
  const requested = configurationIn(commandLine, project, target);
  const existing = Object.keys(context.target?.configurations ?? {});
  // No configurations at all: the plugin could not read the config file; the operation reports why.
  if (requested === undefined || existing.length === 0 || existing.includes(requested)) return undefined;
  const projectRoot = context.projectsConfigurations?.projects[project]?.root ?? '<project root>';
  const configFile = path.posix.join(projectRoot, CONFIG_RELATIVE_PATH);
  return new FaberError(
    'ENVIRONMENT_UNKNOWN',
    `The configuration "${requested}" was asked for, but the ${target} target of ${project} has only ${existing.join(', ')}; Nx ran it without one, so nothing was done`,
    {
      result: { requested_configuration: requested, configurations: existing, config_file: configFile },
      suggestions: [
        `Use one of them: ${existing.map((name) => `nx run ${project}:${target}:${name}`).join(', ')}`,
        `To add "${requested}": add it under "environments" in ${configFile} (inferred targets get one configuration per environment)`,
        `Targets written in project.json get it from the configuration generator: nx g ${PACKAGE_NAME}:configuration --project=${project} --environments=${[...existing, requested].join(',')}`,
      ],
    },
  );
}

/** The configuration a command line asks of project:target (`p:t:c`, `-c c`, `--configuration=c`). */
export function configurationIn(args: readonly string[], project: string, target: string): string | undefined {
  for (const [index, arg] of args.entries()) {
    const flag = /^(?:-c|--configuration)(?:=(.+))?$/.exec(arg);
    if (flag) return flag[1] ?? args[index + 1];
    const prefix = `${project}:${target}:`;
    if (arg.startsWith(prefix) && arg.length > prefix.length) return arg.slice(prefix.length);
  }
  return undefined;
}

/**
 * The command line of the nx process that started this task: Nx 24 names it first in
 * NX_INVOCATION_ANCESTOR_PIDS; Nx 23 does not, so the parent processes are asked in turn.
 */
function nxCommandLine(env: NodeJS.ProcessEnv): string[] | undefined {
  const named = (env['NX_INVOCATION_ANCESTOR_PIDS'] ?? '').split(',')[0];
  const candidates = named && /^\d+$/.test(named) ? [Number(named)] : ancestors(process.ppid, 4);
  for (const pid of candidates) {
    const args = commandLineOf(pid);
    if (args?.some((arg) => /(^|[/\\])nx(\.js)?$/.test(arg))) return args;
  }
  return undefined;
}

function commandLineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf-8')
      .split('\0')
      .filter((arg) => arg !== '');
  } catch {
    return undefined;
  }
}

/** `pid` and up to `depth - 1` of its ancestors (Linux /proc; none elsewhere). */
function ancestors(pid: number, depth: number): number[] {
  const found: number[] = [];
  let current = pid;
  while (found.length < depth && current > 1) {
    found.push(current);
    try {
      // /proc/<pid>/stat: "pid (name) state ppid ...": the name may hold spaces, so read after the last ')'.
      const stat = readFileSync(`/proc/${current}/stat`, 'utf-8');
      current = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  return found;
}
