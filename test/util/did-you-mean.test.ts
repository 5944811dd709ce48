import { describe, expect, it } from 'vitest';
import { closestName } from '../../src/util/did-you-mean.ts';

describe('closestName', () => {
  const restore = ['environment', 'from', 'targetConnectionStringEnv', 'yes', 'force', 'skipSafetyBackup'];

  it.each([
    ['form', restore, 'from'],
    ['froce', restore, 'force'],
    ['target-connection-string-env', restore, 'targetConnectionStringEnv'],
    ['skipSafteyBackup', restore, 'skipSafetyBackup'],
    ['lable', ['label', 'reason', 'tags'], 'label'],
    ['conection_string_env', ['connection_string_env', 'backup_before_migrate', 'protected'], 'connection_string_env'],
  ])('%s → %s', (typed, known, expected) => {
    expect(closestName(typed, known)).toBe(expected);
  });

  it('suggests nothing when no name is close', () => {
    expect(closestName('database', restore)).toBeUndefined();
    expect(closestName('id', restore)).toBeUndefined();
  });
});
