import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { sleep } from '../../../shared/sleep.js';

describe('sleep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const settled = (p: Promise<void>) => {
    const state = { done: false };
    void p.then(() => (state.done = true));
    return state;
  };

  it('resolves after the time given', async () => {
    const s = settled(sleep(1000, new AbortController().signal));
    await vi.advanceTimersByTimeAsync(999);
    assert.equal(s.done, false);
    await vi.advanceTimersByTimeAsync(1);
    assert.equal(s.done, true);
  });

  it('resolves as soon as its signal aborts, and leaves no timer behind', async () => {
    const stop = new AbortController();
    const s = settled(sleep(60_000, stop.signal));
    stop.abort();
    await vi.advanceTimersByTimeAsync(0);
    assert.equal(s.done, true);
    assert.equal(vi.getTimerCount(), 0);
  });

  it('does not wait at all once its signal has aborted', async () => {
    const stop = new AbortController();
    stop.abort();
    const s = settled(sleep(60_000, stop.signal));
    await vi.advanceTimersByTimeAsync(0);
    assert.equal(s.done, true);
    assert.equal(vi.getTimerCount(), 0);
  });
});
