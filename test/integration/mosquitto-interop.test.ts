import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt from 'mqtt';
import { decodeBatch } from '../../shared/contract/codec.js';
import { parseTopic, topics } from '../../shared/contract/topics.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';

/** The agent speaks plain MQTT 3.1.1: any broker will do, not only our gateway. */
describe('agent through Mosquitto (a separate broker process)', () => {
  const dir = tempDir();
  let mosquitto: ChildProcess;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    mosquitto = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    await waitFor('mosquitto listening', async () => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }).catch(() => undefined);
      await c?.endAsync();
      return c !== undefined;
    }, 10_000, 100);
  });

  afterAll(() => {
    mosquitto.kill('SIGTERM');
  });

  it('publishes valid batches in seq order, is acknowledged, and sets its retained status', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const watcher = await mqtt.connectAsync(url, { clientId: 'watcher' });
    const seqs: number[] = [];
    const statuses: unknown[] = [];
    watcher.on('message', (topic, payload) => {
      const t = parseTopic(topic)!;
      if (t.kind === 'telemetry') seqs.push(...decodeBatch(t.vehicle, payload).readings.map((r) => r.seq));
      if (t.kind === 'status') statuses.push(JSON.parse(payload.toString()));
    });
    await watcher.subscribeAsync([topics.telemetry('interop-1'), topics.status('interop-1')], { qos: 1 });

    const opsPort = await freePort();
    const agent: Proc = runFleet(['agent', '--vehicle', 'interop-1', '--mqtt-url', url, '--data-dir', dir, '--sim-hz', '10', '--ops-port', String(opsPort)]);
    try {
      await waitFor('200 readings through mosquitto', () => seqs.length >= 200, 20_000);
      assert.deepEqual(seqs.slice(0, 200), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.ok(statuses.some((s) => (s as { online: boolean }).online === true));
      // PUBACKs from Mosquitto empty the agent's buffer as they do with the gateway.
      const health = await waitFor('agent health', async () => {
        const { body } = await getJson<{ connected: boolean; buffered: number; nextSeq: number }>(`http://127.0.0.1:${opsPort}/healthz`);
        return body.connected && body.nextSeq > 100 && body.buffered < body.nextSeq - 1 ? body : undefined;
      });
      assert.equal(health.connected, true);
    } finally {
      await kill(agent, 'SIGKILL');
    }
    // The Last Will tells the broker's subscribers the truck went away.
    await waitFor('the Last Will', () => statuses.some((s) => (s as { online: boolean }).online === false), 10_000);
    await watcher.endAsync();
  });
});
