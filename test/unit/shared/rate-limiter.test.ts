import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { RateLimiter } from '../../../shared/rate-limiter.js';

describe('RateLimiter', () => {
  it('lets a burst through at once, then spaces reservations at the rate, in order', () => {
    let now = 0;
    const limiter = new RateLimiter(10, 3, () => now);
    assert.deepEqual([limiter.reserve(), limiter.reserve(), limiter.reserve()], [0, 0, 0]);
    assert.deepEqual([limiter.reserve(), limiter.reserve()], [100, 200], 'each later publish waits longer');
    now = 1000;
    assert.equal(limiter.reserve(), 0, 'a second refills ten tokens, minus the two owed');
  });

  it('says how long until a token without taking one', () => {
    let now = 0;
    const limiter = new RateLimiter(4, 1, () => now);
    assert.equal(limiter.delay(), 0);
    assert.equal(limiter.delay(), 0, 'asking takes nothing');
    limiter.reserve();
    assert.equal(limiter.delay(), 250);
    now = 250;
    assert.equal(limiter.delay(), 0);
    now = 10_000;
    limiter.reserve();
    assert.equal(limiter.delay(), 250, 'the bucket never holds more than the burst');
  });
});
