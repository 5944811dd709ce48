import { describe, expect, it } from 'vitest';
import { redactSecrets, redactUrls } from '../../src/util/redact.ts';

describe('redaction', () => {
  it('hides the password of every URL in a text', () => {
    expect(redactUrls('connect postgres://app:s3cret@db:5432/app failed; mysql://root:x@h/db')).toBe(
      'connect postgres://app:***@db:5432/app failed; mysql://root:***@h/db',
    );
  });
  it('leaves URLs without a password alone', () => {
    expect(redactUrls('postgres://app@db/app and sqlite:data/x.db')).toBe('postgres://app@db/app and sqlite:data/x.db');
  });
  it('removes known secrets in raw and percent-encoded form', () => {
    const secret = 'p@ss:w/rd%';
    expect(redactSecrets(`pw=${secret} url=${encodeURIComponent(secret)}`, [secret])).toBe('pw=*** url=***');
  });
});
