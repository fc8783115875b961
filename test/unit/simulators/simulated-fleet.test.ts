import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { ConfigError } from '../../../shared/config.js';
import { simulatedTruckConfigs, truckSecretsSchema } from '../../../simulators/simulated-fleet.js';

const fleet = { count: 3, prefix: 'sim-', mqttUrl: 'mqtt://10.0.0.1:1883,mqtt://10.0.0.2:1883', dataDir: '/tmp/sim' };

describe('simulatedTruckConfigs', () => {
  it('numbers the trucks from 1 and gives each its own seed, both gateways and no password by default', () => {
    const configs = simulatedTruckConfigs(fleet);
    assert.deepEqual(
      configs.map((c) => [c.vehicle, c.simSeed, c.password]),
      [
        ['sim-01', 1, undefined],
        ['sim-02', 2, undefined],
        ['sim-03', 3, undefined],
      ],
    );
    for (const c of configs) assert.equal(c.mqttUrl, fleet.mqttUrl);
  });

  it('gives each truck its own secret for a gateway in password mode', () => {
    const secrets = { 'sim-01': 'secret-one', 'sim-02': 'secret-two', 'sim-03': 'secret-three' };
    assert.deepEqual(
      simulatedTruckConfigs({ ...fleet, secrets }).map((c) => c.password),
      ['secret-one', 'secret-two', 'secret-three'],
    );
  });

  it('refuses secrets that leave a truck out, naming it', () => {
    assert.throws(
      () => simulatedTruckConfigs({ ...fleet, secrets: { 'sim-01': 'a', 'sim-03': 'c' } }),
      (err: Error) => err instanceof ConfigError && /no secret for sim-02/.test(err.message),
    );
  });

  it('reads a secrets file of vehicle ids and secrets only', () => {
    assert.ok(truckSecretsSchema.safeParse({ 'sim-01': 'a' }).success);
    assert.ok(!truckSecretsSchema.safeParse({ 'not a vehicle': 'a' }).success);
    assert.ok(!truckSecretsSchema.safeParse({ 'sim-01': '' }).success);
  });
});
