import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { SignInThrottle } from '../../../cloud/console/sign-in-throttle.js';

const OPTS = { burst: 3, refillMs: 1000, maxKeys: 100 };

describe('sign-in throttle', () => {
  it('lets an address fail its burst, then one attempt per refill', () => {
    const t = new SignInThrottle(OPTS);
    for (let i = 0; i < 3; i++) assert.equal(t.attempt('10.0.0.1', `user-${i}`, 0), undefined);
    assert.deepEqual(t.attempt('10.0.0.1', 'user-9', 0), { by: 'address', retryAfterMs: 1000 });
    assert.deepEqual(t.attempt('10.0.0.1', 'user-9', 400), { by: 'address', retryAfterMs: 600 });
    assert.equal(t.attempt('10.0.0.1', 'user-9', 1000), undefined, 'one token back after a refill');
    assert.equal(t.attempt('10.0.0.2', 'user-8', 1000), undefined, 'other addresses are not held up');
  });

  it('holds a user name tried from many addresses', () => {
    const t = new SignInThrottle(OPTS);
    for (let i = 0; i < 3; i++) assert.equal(t.attempt(`10.0.1.${i}`, 'alice', 0), undefined);
    assert.deepEqual(t.attempt('10.0.2.1', 'alice', 0), { by: 'user', retryAfterMs: 1000 });
    assert.equal(t.attempt('10.0.2.1', 'bob', 0), undefined);
  });

  it('gives a successful attempt its tokens back', () => {
    const t = new SignInThrottle(OPTS);
    for (let i = 0; i < 10; i++) {
      assert.equal(t.attempt('10.0.0.1', 'alice', 0), undefined, `attempt ${i}`);
      t.succeeded('10.0.0.1', 'alice', 0);
    }
  });

  it('remembers at most maxKeys, forgetting full buckets first', () => {
    const t = new SignInThrottle({ ...OPTS, maxKeys: 2 });
    for (let i = 0; i < 3; i++) t.attempt('10.0.0.1', 'alice', 0);
    // Two more names push out alice's bucket (the oldest): memory stays bounded under a flood of names.
    t.attempt('10.0.0.2', 'bob', 0);
    t.attempt('10.0.0.3', 'carol', 0);
    assert.equal(t.attempt('10.0.0.4', 'alice', 0), undefined);
  });
});
