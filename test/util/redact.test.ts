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
  it('removes a known password with / and @ in it from a URL as a whole', () => {
    const secret = 'pw@:/%"\\#;x1';
    expect(redactSecrets(`connection to postgres://u:${secret}@db/app failed`, [secret])).toBe(
      'connection to postgres://u:***@db/app failed',
    );
  });
  it('removes known secrets in raw and percent-encoded form', () => {
    const secret = 'p@ss:w/rd%';
    expect(redactSecrets(`pw=${secret} url=${encodeURIComponent(secret)}`, [secret])).toBe('pw=*** url=***');
  });
});
