import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { gatewayConfigSchema } from '../../../gateway/gateway-config.js';

const problems = (settings: Record<string, unknown>) => {
  const r = gatewayConfigSchema.safeParse(settings);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('gateway settings', () => {
  it('allow the development service token only while every listener is on loopback', () => {
    const token = /serviceToken: the development service token is public.*set FLEET_SERVICE_TOKEN/;
    assert.deepEqual(problems({ auth: 'password', host: '127.0.0.1' }), []);
    assert.match(problems({ auth: 'password', host: '0.0.0.0' }).join('\n'), token);
    assert.match(problems({ auth: 'mtls', host: '10.0.0.5', tlsCert: 'c', tlsKey: 'k', tlsCa: 'ca' }).join('\n'), token);
    // The service listener beside mqtts takes the token too.
    assert.match(
      problems({ auth: 'mtls', tlsCert: 'c', tlsKey: 'k', tlsCa: 'ca', servicePort: 1884, serviceHost: '0.0.0.0' }).join('\n'),
      token,
    );
    assert.deepEqual(problems({ auth: 'password', host: '0.0.0.0', serviceToken: 'a-secret-of-our-own' }), []);
  });

  it('keep the dead-letter caps large enough for the payloads they keep', () => {
    assert.match(
      problems({ maxPayloadBytes: 1_000_000, deadLetterMaxBytesPerVehicle: 1_500_000 }).join('\n'),
      /deadLetterMaxBytesPerVehicle: must hold at least two of the largest payloads/,
    );
    assert.match(
      problems({ deadLetterMaxBytes: 1_000_000, deadLetterMaxBytesPerVehicle: 2_000_000 }).join('\n'),
      /deadLetterMaxBytes: must be at least deadLetterMaxBytesPerVehicle/,
    );
    assert.deepEqual(problems({}), []);
  });

  it('refuse a min.insync.replicas no write could meet', () => {
    assert.deepEqual(problems({ sinks: ['kafka'], kafkaBrokers: ['k:9092'], kafkaReplicationFactor: 3, kafkaMinInsyncReplicas: 2 }), []);
    assert.match(
      problems({ sinks: ['kafka'], kafkaBrokers: ['k:9092'], kafkaReplicationFactor: 2, kafkaMinInsyncReplicas: 3 }).join('\n'),
      /kafkaMinInsyncReplicas: must not exceed kafkaReplicationFactor/,
    );
  });
});
