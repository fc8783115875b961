import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { runFleet } from '../support/harness.js';

describe('fleet eval: the default rules on labelled truck-days', () => {
  it('meets every floor on the held-out seed set and prints the table', async () => {
    const proc = runFleet(['eval', '--quick', '--set', 'held-out', '--check']);
    const code = await proc.exited;
    const out = proc.lines.join('\n');
    assert.equal(code, 0, `held-out floors missed:\n${proc.stderr.join('\n')}\n${out}`);
    assert.match(out, /^\| overheat \(fast\) \| 20\/20 /m);
    assert.match(out, /^\| false alerts per fault-free truck-day \| 0\.0[0-4]\d /m);
    assert.match(out, /^\| area under the precision-recall curve of row scores \| 0\.\d{3} /m);
    assert.match(proc.stderr.join('\n'), /scored 220 truck-days in \d+ s/);
  });
});
