import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, kill, runFleet, tempDir, waitFor } from '../support/harness.js';

const reading = (vehicle: string, seq: number): Reading => ({
  vehicle, seq, ts: Date.now(), clock: 'synced', sensor: 'engine_temp', value: 88.5, quality: 'good',
});
const validBatch = (vehicle: string, seq: number) =>
  encodeBatch({ vehicle, headTs: Date.now(), readings: [reading(vehicle, seq)] });

async function refusedCount(cloud: Cloud, reason: string): Promise<number> {
  const metric = await cloud.gateway.registry.getSingleMetric('fleet_gateway_refused_total')!.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('bad input at the gateway', () => {
  const dir = tempDir();
  let cloud: Cloud;
  let good: MqttClient;
  let bad: MqttClient;
  const rejections: { reason: string; detail: string }[] = [];

  before(async () => {
    cloud = await new Cloud({ dir, gateway: { maxPayloadBytes: 4096 } }).start();
    good = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'good-1', reconnectPeriod: 0 });
    bad = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'bad-1', reconnectPeriod: 0 });
    bad.on('message', (_t, p) => rejections.push(JSON.parse(p.toString())));
    await bad.subscribeAsync(topics.rejected('bad-1'), { qos: 1 });
  });

  after(async () => {
    await good.endAsync(true);
    await bad.endAsync(true);
    await cloud.stop();
  });

  it('acknowledges a malformed payload, dead-letters it with its reason and tells the vehicle', async () => {
    await bad.publishAsync(topics.telemetry('bad-1'), Buffer.from('{"readings": [{"seq": "x"}]}'), { qos: 1 });
    await bad.publishAsync(topics.telemetry('bad-1'), Buffer.from([0xfb, 0x10, 0x05]), { qos: 1 });
    await waitFor('two rejection notices', () => rejections.length >= 2);
    assert.equal(rejections[0]!.reason, 'malformed');
    assert.match(rejections[0]!.detail, /readings\[0\]\.seq: must be a positive integer, got "x"/);
    assert.match(rejections[1]!.detail, /reading count 5 does not fit a 1-byte body/);
    assert.equal(await refusedCount(cloud, 'malformed'), 2);
    const db = new Database(join(dir, 'gateway', 'dead-letters.db'), { readonly: true });
    const rows = db.prepare('SELECT vehicle, reason FROM dead_letters').all() as { vehicle: string; reason: string }[];
    db.close();
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.vehicle === 'bad-1' && r.reason.startsWith('malformed:')));
    // The same connection goes on: its next valid batch is stored.
    assert.equal(bad.connected, true);
    await bad.publishAsync(topics.telemetry('bad-1'), validBatch('bad-1', 1), { qos: 1 });
    await waitFor('the valid batch stored', () => storedSeqs(cloud.detector, 'bad-1').length === 1);
  });

  it('dead-letters an oversized payload instead of storing it', async () => {
    const big = encodeBatch({ vehicle: 'bad-1', headTs: Date.now(), readings: Array.from({ length: 2000 }, (_, i) => reading('bad-1', 10 + i)) });
    assert.ok(big.length > 4096);
    await bad.publishAsync(topics.telemetry('bad-1'), big, { qos: 1 });
    await waitFor('an oversize notice', () => rejections.find((r) => r.reason === 'oversize'));
    assert.match(rejections.find((r) => r.reason === 'oversize')!.detail, /exceeds the limit of 4096/);
    assert.equal(await refusedCount(cloud, 'oversize'), 1);
    assert.deepEqual(storedSeqs(cloud.detector, 'bad-1'), [1]);
  });

  it('disconnects a vehicle writing under another vehicle id, and others carry on', async () => {
    const intruder = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'intruder-1', reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => intruder.once('close', () => resolve()));
    intruder.publish(topics.telemetry('good-1'), validBatch('good-1', 1), { qos: 1 });
    await closed;
    assert.equal(await refusedCount(cloud, 'foreign_topic'), 1);
    assert.deepEqual(storedSeqs(cloud.detector, 'good-1'), [], 'nothing stored under the victim');
    await good.publishAsync(topics.telemetry('good-1'), validBatch('good-1', 1), { qos: 1 });
    await waitFor('good-1 stored', () => storedSeqs(cloud.detector, 'good-1').length === 1);
    intruder.end(true);
  });

  it("refuses a vehicle's subscription to another vehicle's alerts", async () => {
    // The broker answers SUBACK 0x80 (failure), which mqtt.js reports as an error.
    await assert.rejects(bad.subscribeAsync(topics.alerts('good-1'), { qos: 1 }), /Subscribe error/);
    assert.equal(bad.connected, true);
  });
});

describe('bad input on the command line', () => {
  const dir = tempDir();

  it('a port already in use exits 2 naming the port and the flag that moves it', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = String((holder.address() as { port: number }).port);
    const noGateway = `mqtt://127.0.0.1:${await freePort()}`;
    const cases: [string[], string][] = [
      [['gateway', '--port', port, '--ops-port', '-1', '--data-dir', join(dir, 'gw1')], '--port'],
      [['gateway', '--port', '0', '--ops-port', port, '--data-dir', join(dir, 'gw2')], '--ops-port'],
      [['detector', '--ops-port', port, '--data-dir', join(dir, 'det'), '--stream-path', join(dir, 'gw2', 'stream.db'), '--mqtt-url', noGateway], '--ops-port'],
      [['agent', '--vehicle', 'port-1', '--ops-port', port, '--data-dir', join(dir, 'agent'), '--mqtt-url', noGateway], '--ops-port'],
      [['demo', '--port', '0', '--console-port', port, '--trucks', '1', '--duration', '1', '--data-dir', join(dir, 'demo')], '--console-port'],
    ];
    try {
      for (const [args, flag] of cases) {
        const p = runFleet(args);
        try {
          assert.equal(await p.exited, 2, `${args[0]} ${flag}: ${p.stderr.join('\n')}`);
        } finally {
          await kill(p);
        }
        const err = p.stderr.join('\n');
        assert.match(err, new RegExp(`^fleet: port ${port} on 127\\.0\\.0\\.1 is already in use by another process: choose another with ${flag} `), err);
        assert.doesNotMatch(err, /\n\s+at |sonic boom/, 'no stack trace');
      }
    } finally {
      holder.close();
    }
  });


  it('a config file with a bad field exits 2 naming the file and the field', async () => {
    const file = join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ port: 'eighty', maxPayloadBytes: 10 }));
    const p = runFleet(['gateway', '--config', file]);
    assert.equal(await p.exited, 2);
    const err = p.stderr.join('\n');
    assert.match(err, new RegExp(`${file}: port: `));
    assert.match(err, new RegExp(`${file}: maxPayloadBytes: `));
  });

  it('a config file that is not JSON exits 2 saying so', async () => {
    const file = join(dir, 'agent.json');
    writeFileSync(file, '{ vehicle: truck }');
    const p = runFleet(['agent', '--config', file]);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr.join('\n'), /agent\.json: not valid JSON/);
  });

  it('a bad flag value and a bad environment value are named', async () => {
    const flag = runFleet(['agent', '--vehicle', 'truck 1']);
    assert.equal(await flag.exited, 2);
    assert.match(flag.stderr.join('\n'), /flag --vehicle: vehicle: must be 1-64 characters/);
    const env = runFleet(['agent', '--vehicle', 't1'], { FLEET_BUFFER_MAX_BYTES: 'lots' });
    assert.equal(await env.exited, 2);
    assert.match(env.stderr.join('\n'), /env FLEET_BUFFER_MAX_BYTES: bufferMaxBytes: /);
  });

  it('a hardware agent config with bad device settings exits 2 naming each field', async () => {
    const file = join(dir, 'truck.json');
    writeFileSync(file, JSON.stringify({
      vehicle: 'truck-9', sensors: 'hardware', gpsPath: '/dev/fleet-gps', gpsBaudRate: 'fast', obdPollMs: 5,
      oneWireIds: ['28-zz'], ledPin: 40, clock: 'rtc',
    }));
    const p = runFleet(['agent', '--config', file]);
    assert.equal(await p.exited, 2);
    const err = p.stderr.join('\n');
    for (const field of ['gpsBaudRate', 'obdPollMs', 'oneWireIds[0]', 'ledPin', 'clock']) assert.ok(err.includes(`${file}: ${field}: `), `${field} named in\n${err}`);
  });

  it('fleet agent --help offers a flag for every setting but the fault list (a config-file list)', async () => {
    const p = runFleet(['agent', '--help']);
    assert.equal(await p.exited, 0);
    const help = p.lines.join('\n');
    const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `;
    const missing = Object.keys(agentConfigSchema.shape).filter((k) => k !== 'faults' && !help.includes(flag(k)));
    assert.deepEqual(missing, []);
  });

  it('an unknown flag exits 2 with usage help', async () => {
    const p = runFleet(['detector', '--windw-ms', '5']);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr.join('\n'), /unknown option '--windw-ms'/);
  });

  it('every command has --help', async () => {
    for (const cmd of ['agent', 'gateway', 'detector', 'dispatcher', 'console', 'sim', 'demo', 'replay', 'device', 'hash-password']) {
      const p = runFleet([cmd, '--help']);
      assert.equal(await p.exited, 0, cmd);
      assert.match(p.lines.join('\n'), new RegExp(`Usage: fleet ${cmd}`));
    }
  });
});
