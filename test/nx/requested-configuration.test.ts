import type { ExecutorContext } from '@nx/devkit';
import { describe, expect, it } from 'vitest';
import { configurationIn, missingConfiguration } from '../../src/nx/requested-configuration.ts';

describe('the configuration a command line asked for', () => {
  it.each([
    [['node', 'nx', 'run', 'billing:backup:staging'], 'staging'],
    [['node', 'nx', 'run', 'billing:backup', '-c', 'staging'], 'staging'],
    [['node', 'nx', 'run-many', '-t', 'backup', '--configuration=staging'], 'staging'],
    [['node', 'nx', 'run', 'billing:backup'], undefined],
    [['node', 'nx', 'run', 'other:backup:staging'], undefined],
  ])('%j → %s', (args, expected) => {
    expect(configurationIn(args, 'billing', 'backup')).toBe(expected);
  });
});

describe('missingConfiguration', () => {
  const context = {
    projectName: 'billing',
    targetName: 'backup',
    target: { configurations: { dev: {}, production: {} } },
    projectsConfigurations: { version: 2, projects: { billing: { root: 'apps/billing' } } },
  } as unknown as ExecutorContext;

  it('names the configuration asked for, the ones the target has and how to add it', () => {
    const error = missingConfiguration(context, {}, ['node', 'nx', 'run', 'billing:backup:staging']);

    expect(error?.code).toBe('ENVIRONMENT_UNKNOWN');
    expect(error?.message).toBe(
      'The configuration "staging" was asked for, but the backup target of billing has only dev, production; Nx ran it without one, so nothing was done',
    );
    expect(error?.suggestions.join('\n')).toContain(
      'add it under "environments" in apps/billing/.fractary/plugins/faber-db/config.json',
    );
  });

  it('says nothing when Nx passed a configuration, or none was asked for, or the command line is unknown', () => {
    expect(
      missingConfiguration({ ...context, configurationName: 'dev' }, {}, ['nx', 'run', 'billing:backup:dev']),
    ).toBeUndefined();
    expect(missingConfiguration(context, {}, ['nx', 'run', 'billing:backup'])).toBeUndefined();
    expect(missingConfiguration(context, {}, undefined)).toBeUndefined();
    // A target without configurations comes from a config file the plugin could not read: the operation says why.
    expect(
      missingConfiguration({ ...context, target: {} }, {}, ['nx', 'run', 'billing:backup:staging']),
    ).toBeUndefined();
  });
});
