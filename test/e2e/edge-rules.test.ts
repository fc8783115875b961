import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { createLogger } from '../../shared/log.js';
import { createSimulatedTruck, type SimulatedTruck } from '../../simulators/simulated-agent.js';
import { freePort, tempDir, waitFor } from '../support/harness.js';

describe('edge rules on the agent', () => {
  const dir = tempDir();
  let truck: SimulatedTruck | undefined;

  afterAll(async () => {
    await truck?.agent.stop();
  });

  it('sounds the cab within 1 s of the overheating window closing, with the gateway unreachable', async () => {
    const rulesFile = join(dir, 'rules.json');
    writeFileSync(
      rulesFile,
      JSON.stringify({
        windowMs: 2000,
        rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
      }),
    );
    const config = agentConfigSchema.parse({
      vehicle: 'edge-1',
      // Nothing listens here: the truck is in a dead zone.
      mqttUrl: `mqtt://127.0.0.1:${await freePort()}`,
      dataDir: dir,
      opsPort: -1,
      simHz: 10,
      rulesFile,
      faults: [{ kind: 'engine_overheat', fromS: 1 }],
    });
    truck = createSimulatedTruck(config, createLogger('test', { file: join(dir, 'agent.log') }));
    await truck.agent.start();
    const shown = await waitFor('the edge alert in the cab', () => truck!.driver.shown[0], 60_000);
    assert.equal(truck.agent.link.connected, false);
    assert.equal(shown.alert.rule, 'engine-overheat');
    assert.equal(shown.alert.id, `edge-1.engine-overheat.${shown.alert.episodeStart}`);
    const delay = shown.shownAt - shown.alert.windowEnd;
    assert.ok(delay >= 0 && delay < 1000, `shown ${delay} ms after the window closed`);
    assert.equal(truck.driver.shown.length, 1, 'once per episode');
  });
});
