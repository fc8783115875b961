import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { runFleet, tempDir } from '../support/harness.js';

describe('fleet demo --duration 60 --json', () => {
  it('runs the whole system, loses nothing, archives every reading and alerts the overheating truck within a second', async () => {
    const proc = runFleet(['demo', '--duration', '60', '--json', '--port', '0', '--console-port', '0', '--data-dir', tempDir()]);
    assert.equal(await proc.exited, 0, proc.stderr.join('\n'));
    const summary = JSON.parse(proc.lines.filter((l) => l.trim() !== '').at(-1)!) as Record<string, number>;
    process.stdout.write(`# demo: ${JSON.stringify(summary)}\n`);
    assert.equal(summary.vehicles, 10);
    assert.ok(summary.readingsProduced! > 10 * 60 * 5, `produced ${summary.readingsProduced}`);
    assert.equal(summary.lost, 0);
    assert.equal(summary.readingsStored, summary.readingsProduced);
    assert.equal(summary.readingsArchived, summary.readingsProduced, 'every reading in the Parquet archive once');
    assert.ok(summary.alertsRaised! >= 1);
    assert.ok(summary.driverAlertsDelivered! >= 1);
    assert.ok(summary.p99AlertLatencyMs! <= 1000, `p99 ${summary.p99AlertLatencyMs} ms`);
  });
});
