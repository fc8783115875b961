import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { boundScore, boundsWorth, judge, learn, newEvidence, tailLog10 } from '../../../shared/rules/evidence.js';

describe('scores', () => {
  it('are 0 when normal, 0.5 at the bound, and rise toward 1 without reaching it', () => {
    assert.equal(boundScore(0), 0);
    assert.equal(boundScore(-3), 0);
    assert.equal(boundScore(1), 0.5);
    let last = 0.5;
    for (const x of [1.5, 2, 10, 1e3, 1e6, 1e12]) {
      const s = boundScore(x);
      assert.ok(s > last && s < 1, `${x} bounds' worth scores ${s}`);
      last = s;
    }
    for (const s of [0.1, 0.5, 0.9, 0.999]) assert.ok(Math.abs(boundScore(boundsWorth(s)) - s) < 1e-12);
  });

  it('measure evidence by the normal tail: −log10 Q(u), exact where Q itself underflows', () => {
    const cases: [number, number][] = [
      [0, 0.30103],
      [1, 0.79955],
      [3, 2.86899],
      [6, 8.99634],
      [10, 23.1124],
      [40, 349.5],
    ];
    for (const [u, expected] of cases) assert.ok(Math.abs(tailLog10(u) - expected) / expected < 2e-3, `u = ${u}: ${tailLog10(u)} vs ${expected}`);
  });
});

describe('judge', () => {
  /** Standard normal draws from a fixed seed (Box–Muller on a linear congruential stream). */
  function* normals(seed: number): Generator<number> {
    let x = seed;
    const next = () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) + 0.5) / 2 ** 31;
    for (;;) yield Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  }

  it('almost never calls independent normal noise anomalous, at any scale', () => {
    for (const scale of [1e-3, 1, 1e4]) {
      const s = newEvidence();
      const draws = normals(11);
      let over = 0;
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        const innovation = scale * draws.next().value!;
        const warm = i > 100;
        const j = judge(s, innovation, { minStd: 1e-9, direction: 'both', memoryWindows: 8640 }, warm);
        if (i > 1000 && j.u > 6) over++;
        // As a rule does: learn from every window while warming up, then from unremarkable ones.
        if (!warm || j.uEither <= 6) learn(s, innovation, 360);
      }
      assert.ok(over / n < 1e-3, `scale ${scale}: ${over} of ${n} past 6`);
    }
  });
});
