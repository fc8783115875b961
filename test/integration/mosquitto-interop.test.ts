import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt from 'mqtt';
import { decodeBatch } from '../../shared/contract/codec.js';
import { parseTopic, topics } from '../../shared/contract/topics.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';

/** Mosquitto on `port` with `extra` configuration lines, once it takes connections. */
async function startMosquitto(dir: string, port: number, extra = ''): Promise<ChildProcess> {
  const conf = join(dir, `mosquitto-${port}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n${extra}`);
  const mosquitto = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  await waitFor(
    'mosquitto listening',
    async () => {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }).catch(() => undefined);
      await c?.endAsync();
      return c !== undefined;
    },
    10_000,
    100,
  );
  return mosquitto;
}

/** The agent speaks plain MQTT 3.1.1: any broker will do, not only our gateway. */
describe('agent through Mosquitto (a separate broker process)', () => {
  const dir = tempDir();
  let mosquitto: ChildProcess;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    mosquitto = await startMosquitto(dir, port);
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
    const agent: Proc = runFleet([
      'agent',
      '--vehicle',
      'interop-1',
      '--mqtt-url',
      url,
      '--data-dir',
      dir,
      '--sim-hz',
      '10',
      '--ops-port',
      String(opsPort),
    ]);
    try {
      await waitFor('200 readings through mosquitto', () => seqs.length >= 200, 20_000);
      assert.deepEqual(
        seqs.slice(0, 200),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
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

  it('sets aside a batch the broker cuts the connection over, and sends what follows it', async () => {
    // Mosquitto drops an MQTT 3.1.1 client that sends a packet over max_packet_size; the agent's status
    // (under 500 bytes) and its batches of a fifth of a second pass, a backlog batch of 300 readings does not.
    const cutPort = await freePort();
    const url = `mqtt://127.0.0.1:${cutPort}`;
    const opsPort = await freePort();
    const health = async () =>
      (await getJson<{ buffered: number; setAside: { batches: number; readings: number } }>(`http://127.0.0.1:${opsPort}/healthz`)).body;
    const agent = runFleet([
      'agent',
      '--vehicle',
      'cut-1',
      '--mqtt-url',
      url,
      '--data-dir',
      join(dir, 'cut'),
      '--sim-hz',
      '5',
      '--batch-max-readings',
      '300',
      '--reconnect-base-ms',
      '20',
      '--reconnect-max-ms',
      '200',
      '--ops-port',
      String(opsPort),
    ]);
    let cutting: ChildProcess | undefined;
    try {
      // A backlog first, while there is no broker.
      await waitFor('a backlog of 300 readings', async () => ((await health().catch(() => undefined))?.buffered ?? 0) >= 300, 20_000, 100);
      cutting = await startMosquitto(dir, cutPort, 'max_packet_size 1500\n');
      const watcher = await mqtt.connectAsync(url, { clientId: 'cut-watcher' });
      const seqs: number[] = [];
      watcher.on('message', (_t, payload) => seqs.push(...decodeBatch('cut-1', payload).readings.map((r) => r.seq)));
      await watcher.subscribeAsync(topics.telemetry('cut-1'), { qos: 1 });
      const logged = await waitFor('a batch set aside', () => agent.lines.find((l) => l.includes('batch set aside')), 30_000, 100);
      const { vehicle, last } = JSON.parse(logged) as { vehicle: string; last: number };
      assert.equal(vehicle, 'cut-1');
      // What follows the batch set aside arrives, and keeps arriving.
      await waitFor('readings after the set-aside batch', () => seqs.some((seq) => seq > last + 100), 30_000, 100);
      await watcher.endAsync();
      const h = await health();
      assert.ok(h.setAside.batches >= 1 && h.setAside.readings >= 1);
      assert.ok(h.buffered >= h.setAside.readings, 'set aside, not deleted: still in the buffer');
      const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      assert.match(metrics, new RegExp(`fleet_agent_readings_set_aside_total\\{[^}]*vehicle="cut-1"[^}]*\\} ${h.setAside.readings}`));
    } finally {
      await kill(agent, 'SIGKILL');
      cutting?.kill('SIGTERM');
    }
  });

  it('exports its running totals as counters', async () => {
    const opsPort = await freePort();
    const agent = runFleet([
      'agent',
      '--vehicle',
      'totals-1',
      '--mqtt-url',
      `mqtt://127.0.0.1:${await freePort()}`,
      '--data-dir',
      join(dir, 'totals'),
      '--ops-port',
      String(opsPort),
    ]);
    try {
      const metrics = await waitFor(
        "the agent's metrics",
        () =>
          fetch(`http://127.0.0.1:${opsPort}/metrics`).then(
            (r) => r.text(),
            () => undefined,
          ),
        10_000,
        100,
      );
      for (const name of [
        'fleet_agent_evicted_readings_total',
        'fleet_agent_sensor_rejected_total',
        'fleet_agent_readings_set_aside_total',
        'fleet_agent_rejections_total',
      ]) {
        assert.match(metrics, new RegExp(`# TYPE ${name} counter`), name);
      }
      assert.doesNotMatch(metrics, /# TYPE fleet_agent_(evicted_readings|sensor_rejected) gauge/);
    } finally {
      await kill(agent);
    }
  });
});
