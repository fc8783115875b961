import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { boundScore, boundsWorth, evidenceWorth, judge, learn, newEvidence } from '../../../shared/rules/evidence.js';

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

  it('give evidence of any size a rank below 1: logarithmic in the evidence, 0.5 at the bound', () => {
    assert.equal(boundScore(evidenceWorth(6, 6)), 0.5);
    assert.ok(boundScore(evidenceWorth(3, 6)) < 0.5);
    let last = 0.5;
    for (const u of [12, 60, 1e6, 1e100, 1e300]) {
      const s = boundScore(evidenceWorth(u, 6));
      assert.ok(s > last && s < 1, `u = ${u} scores ${s}`);
      last = s;
    }
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
