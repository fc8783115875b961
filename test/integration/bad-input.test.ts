import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { COMMANDS } from '../../bin/command-list.js';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, kill, runFleet, tempDir, waitFor } from '../support/harness.js';

const reading = (vehicle: string, seq: number): Reading => ({
  vehicle,
  seq,
  ts: Date.now(),
  clock: 'synced',
  sensor: 'engine_temp',
  value: 88.5,
  quality: 'good',
});
const validBatch = (vehicle: string, seq: number) => encodeBatch({ vehicle, headTs: Date.now(), readings: [reading(vehicle, seq)] });

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

  beforeAll(async () => {
    cloud = await new Cloud({ dir, gateway: { maxPayloadBytes: 4096 } }).start();
    good = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'good-1', reconnectPeriod: 0 });
    bad = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'bad-1', reconnectPeriod: 0 });
    bad.on('message', (_t, p) => rejections.push(JSON.parse(p.toString())));
    await bad.subscribeAsync(topics.rejected('bad-1'), { qos: 1 });
  });

  afterAll(async () => {
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
    const big = encodeBatch({
      vehicle: 'bad-1',
      headTs: Date.now(),
      readings: Array.from({ length: 2000 }, (_, i) => reading('bad-1', 10 + i)),
    });
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

  it('counts readings that arrive after their window closed in a counter', async () => {
    const late = await cloud.detector.registry.getSingleMetric('fleet_detector_late_readings_total')?.get();
    assert.equal(late?.type, 'counter', 'fleet_detector_late_readings_total is a counter');
    const before = late.values[0]?.value ?? 0;
    const t = Date.now();
    const send = (seq: number, ts: number) =>
      good.publishAsync(
        topics.telemetry('good-1'),
        encodeBatch({ vehicle: 'good-1', headTs: ts, readings: [{ ...reading('good-1', seq), ts }] }),
        { qos: 1 },
      );
    // A reading 30 s on closes the window of the one before it; one more in that window is late.
    await send(100, t);
    await send(101, t + 30_000);
    await send(102, t + 1);
    await waitFor('the late reading stored', () => storedSeqs(cloud.detector, 'good-1').includes(102));
    const after = await cloud.detector.registry.getSingleMetric('fleet_detector_late_readings_total')!.get();
    assert.equal(after.values[0]!.value - before, 1);
    assert.match(await cloud.detector.registry.metrics(), /# TYPE fleet_detector_late_readings_total counter/);
  });

  it("refuses a vehicle's subscription to another vehicle's alerts", async () => {
    // The broker answers SUBACK 0x80 (failure), which mqtt.js reports as an error.
    await assert.rejects(bad.subscribeAsync(topics.alerts('good-1'), { qos: 1 }), /Subscribe error/);
    assert.equal(bad.connected, true);
  });
});

describe('what the gateway keeps of bad input: status documents and dead letters', () => {
  const dir = tempDir();
  let cloud: Cloud;
  const clients: MqttClient[] = [];
  const PER_VEHICLE = 600_000;
  const STORE = 1_000_000;

  const follow = async (vehicle: string) => {
    const c = await mqtt.connectAsync(cloud.mqttUrl, { clientId: vehicle, reconnectPeriod: 0 });
    clients.push(c);
    const notices: { reason: string; detail: string }[] = [];
    c.on('message', (_t, p) => notices.push(JSON.parse(p.toString()) as { reason: string; detail: string }));
    await c.subscribeAsync(topics.rejected(vehicle), { qos: 1 });
    return { c, notices };
  };
  const letters = () => {
    const db = new Database(join(dir, 'gateway', 'dead-letters.db'), { readonly: true });
    const rows = db
      .prepare(
        'SELECT vehicle, payload, length(payload) + length(CAST(topic AS BLOB)) + length(CAST(reason AS BLOB)) AS bytes FROM dead_letters ORDER BY id',
      )
      .all() as {
      vehicle: string;
      payload: Buffer;
      bytes: number;
    }[];
    db.close();
    return rows;
  };
  const dropped = async (cap: string) => {
    const m = await cloud.gateway.registry.getSingleMetric('fleet_gateway_dead_letters_dropped_total')!.get();
    return m.values.find((v) => v.labels.cap === cap)?.value ?? 0;
  };

  beforeAll(async () => {
    cloud = await new Cloud({ dir, gateway: { deadLetterMaxBytesPerVehicle: PER_VEHICLE, deadLetterMaxBytes: STORE } }).start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cloud.stop();
  });

  it('refuses a status without a plausible `at`, or larger than 4 KiB, and says why', async () => {
    const { c, notices } = await follow('status-1');
    const now = Date.now();
    const bad: [unknown, RegExp][] = [
      [{ online: true }, /status\.at: must be ms since epoch .*got undefined/],
      [{ online: true, at: 'yesterday' }, /status\.at: .*got "yesterday"/],
      [{ online: false, at: 12 }, /status\.at: must be ms since epoch between 2001-01-01T00:00:00\.000Z/],
      [{ online: true, at: now + 86_400_000 }, /status\.at: .*got \d{13}/],
      [{ online: true, at: now + 0.5 }, /status\.at: /],
      [{ online: 'yes', at: now }, /status\.online: must be true or false/],
      [{ online: true, at: now, note: 'x'.repeat(5000) }, /status of \d+ bytes exceeds the limit of 4096/],
    ];
    await c.publishAsync(topics.status('status-1'), JSON.stringify({ online: true, at: now, agentVersion: '0.1.0' }), {
      qos: 1,
      retain: true,
    });
    for (const [doc] of bad) await c.publishAsync(topics.status('status-1'), JSON.stringify(doc), { qos: 1, retain: true });
    await waitFor(`${bad.length} rejection notices`, () => notices.length >= bad.length);
    assert.equal(notices.length, bad.length, 'the valid status is not refused');
    bad.forEach(([, detail], i) => {
      assert.equal(notices[i]!.reason, 'bad_status');
      assert.match(notices[i]!.detail, detail);
    });
  });

  it('keeps dead letters within a byte cap per vehicle and for the store, deleting the oldest and counting them', async () => {
    // Malformed payloads of 250 kB, as fast as a vehicle may send them.
    const junk = (marker: number) => Buffer.alloc(250_000, 0x20 + marker);
    const flood1 = await follow('flood-1');
    for (let i = 0; i < 6; i++) await flood1.c.publishAsync(topics.telemetry('flood-1'), junk(i), { qos: 1 });
    let rows = letters().filter((r) => r.vehicle === 'flood-1');
    assert.deepEqual(
      rows.map((r) => r.payload[0]),
      [0x24, 0x25],
      "the vehicle's two newest letters, within its share",
    );
    assert.ok(rows.reduce((n, r) => n + r.bytes, 0) <= PER_VEHICLE);
    assert.equal(await dropped('vehicle'), 4);
    // Another vehicle's letters push the store past its cap: the oldest of all go (the status test's first, then flood-1's).
    const label = (r: { vehicle: string; payload: Buffer }) =>
      r.vehicle.startsWith('flood') ? `${r.vehicle}:${r.payload[0]! - 0x20}` : r.vehicle;
    const held = letters().map(label);
    const flood2 = await follow('flood-2');
    for (let i = 0; i < 2; i++) await flood2.c.publishAsync(topics.telemetry('flood-2'), junk(i), { qos: 1 });
    rows = letters();
    assert.ok(rows.reduce((n, r) => n + r.bytes, 0) <= STORE, 'the store within its cap');
    assert.deepEqual(rows.map(label), ['flood-1:5', 'flood-2:0', 'flood-2:1'], 'the newest letters are kept');
    const deleted = held.length + 2 - rows.length;
    assert.ok(held.includes('flood-1:4') && deleted >= 1);
    assert.equal(await dropped('store'), deleted);
    // Each was acknowledged (publishAsync resolved); the notices on the rejected topic follow their PUBACKs.
    await waitFor('every refused payload reported', () => flood1.notices.length + flood2.notices.length === 8, 15_000);
    const health = cloud.gateway.health();
    assert.equal(health.deadLetters.dropped, 4 + deleted);
    assert.equal(
      health.deadLetters.bytes,
      rows.reduce((n, r) => n + r.bytes, 0),
    );
    assert.match(
      health.deadLetters.detail ?? '',
      new RegExp(`${4 + deleted} oldest dead letters deleted since start to stay within 1000000 bytes`),
    );
    const bytes = await cloud.gateway.registry.getSingleMetric('fleet_gateway_dead_letter_bytes')!.get();
    assert.equal(bytes.values[0]!.value, health.deadLetters.bytes);
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
      [
        [
          'detector',
          '--ops-port',
          port,
          '--data-dir',
          join(dir, 'det'),
          '--stream-path',
          join(dir, 'gw2', 'stream.db'),
          '--mqtt-url',
          noGateway,
        ],
        '--ops-port',
      ],
      [['agent', '--vehicle', 'port-1', '--ops-port', port, '--data-dir', join(dir, 'agent'), '--mqtt-url', noGateway], '--ops-port'],
      [
        ['demo', '--port', '0', '--console-port', port, '--trucks', '1', '--duration', '1', '--data-dir', join(dir, 'demo')],
        '--console-port',
      ],
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
        assert.match(
          err,
          new RegExp(`^fleet: port ${port} on 127\\.0\\.0\\.1 is already in use by another process: choose another with ${flag} `),
          err,
        );
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

  it('--check-config says whether the settings would start the agent, and starts nothing', async () => {
    const file = join(dir, 'check-agent.json');
    writeFileSync(file, JSON.stringify({ vehicle: 'truck-9', mqttUrl: 'mqtt://127.0.0.1:1', dataDir: join(dir, 'never-made') }));
    const good = runFleet(['agent', '--config', file, '--check-config']);
    assert.equal(await good.exited, 0);
    assert.match(good.lines.join('\n'), /the settings are valid/);
    assert.equal(existsSync(join(dir, 'never-made')), false, 'no buffer was opened');

    // The files a setting names are read too: a provisioning step finds a misnamed certificate before the agent does.
    writeFileSync(file, JSON.stringify({ vehicle: 'truck-9', tlsCert: join(dir, 'no.crt'), tlsKey: join(dir, 'no.key') }));
    const missing = runFleet(['agent', '--config', file, '--check-config']);
    assert.equal(await missing.exited, 2);
    assert.match(missing.stderr.join('\n'), new RegExp(`tlsCert: cannot read ${join(dir, 'no.crt')}: ENOENT`));

    writeFileSync(file, JSON.stringify({ vehicle: 'truck 9' }));
    const bad = runFleet(['agent', '--config', file, '--check-config']);
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr.join('\n'), new RegExp(`${file}: vehicle: `));
  });

  it('a store whose directory does not exist exits 2 naming it, rather than crashing', async () => {
    const store = join(dir, 'no-such-dir', 'fleet.db');
    const p = runFleet(['console', '--store', store]);
    assert.equal(await p.exited, 2);
    const err = p.stderr.join('\n');
    assert.match(err, new RegExp(`store ${store}: its directory does not exist`));
    assert.doesNotMatch(err, /\n\s+at /, 'no stack trace');
  });

  it('a bad flag value and a bad environment value are named', async () => {
    const flag = runFleet(['agent', '--vehicle', 'truck 1']);
    assert.equal(await flag.exited, 2);
    assert.match(flag.stderr.join('\n'), /flag --vehicle: vehicle: must be 1-64 characters/);
    const env = runFleet(['agent', '--vehicle', 't1'], { FLEET_BUFFER_MAX_BYTES: 'lots' });
    assert.equal(await env.exited, 2);
    assert.match(env.stderr.join('\n'), /env FLEET_BUFFER_MAX_BYTES: bufferMaxBytes: /);
  });

  it('bad values of every kind of flag, on every kind of command, exit 2 naming the flag and what is wrong', async () => {
    const cases: [string[], RegExp, NodeJS.ProcessEnv?][] = [
      [['gateway', '--kafka-compression', 'zstd'], /^ {2}flag --kafka-compression: kafkaCompression: expected one of "none"\|"gzip"$/m],
      [['gateway', '--sink-retry-base-ms', 'soon'], /^ {2}flag --sink-retry-base-ms: sinkRetryBaseMs: expected number/m],
      [['gateway'], /^ {2}env FLEET_SINK_RETRY_MAX_MS: sinkRetryMaxMs: expected number to be >=10$/m, { FLEET_SINK_RETRY_MAX_MS: '5' }],
      [['detector', '--webhook-timeout-ms', '10'], /^ {2}flag --webhook-timeout-ms: webhookTimeoutMs: expected number to be >=100$/m],
      [['agent', '--vehicle', 't1', '--compress', 'maybe'], /^ {2}flag --compress: compress: expected boolean/m],
      [
        ['agent', '--vehicle', 't1', '--mqtt-url', 'mqtt://gw-1:1883,gw-2:1883'],
        /^ {2}flag --mqtt-url: mqttUrl: gw-2:1883: a gateway URL starts with mqtt:\/\/ or mqtts:\/\/$/m,
      ],
      [
        ['gateway', '--cluster-redis-url', 'localhost:6379'],
        /^ {2}flag --cluster-redis-url: clusterRedisUrl: must be a redis:\/\/ or rediss:\/\/ URL$/m,
      ],
      [['sim', '--sinks', 'kafka'], /unknown option '--sinks'/],
      [['replay', '--rules', 'r.json', '--csv', 'x.csv', '--window', 'soon'], /^ {2}flag --window: window: expected number/m],
      [['replay', '--csv', 'x.csv'], /required option '--rules <file>' not specified/],
      [['eval', '--workers', '0'], /^ {2}flag --workers: workers: expected number to be >=1$/m],
    ];
    for (const [args, message, env] of cases) {
      const p = runFleet(args, env);
      assert.equal(await p.exited, 2, `${args.join(' ')}: ${p.stderr.join('\n')}`);
      assert.match(p.stderr.join('\n'), message, args.join(' '));
    }
  });

  it('a hardware agent config with bad device settings exits 2 naming each field', async () => {
    const file = join(dir, 'truck.json');
    writeFileSync(
      file,
      JSON.stringify({
        vehicle: 'truck-9',
        sensors: 'hardware',
        gpsPath: '/dev/fleet-gps',
        gpsBaudRate: 'fast',
        obdPollMs: 5,
        oneWireIds: ['28-zz'],
        ledPin: 40,
        clock: 'rtc',
      }),
    );
    const p = runFleet(['agent', '--config', file]);
    assert.equal(await p.exited, 2);
    const err = p.stderr.join('\n');
    for (const field of ['gpsBaudRate', 'obdPollMs', 'oneWireIds[0]', 'ledPin', 'clock'])
      assert.ok(err.includes(`${file}: ${field}: `), `${field} named in\n${err}`);
  });

  it('fleet agent --help offers a flag for every setting but the fault list (a config-file list)', async () => {
    const p = runFleet(['agent', '--help']);
    assert.equal(await p.exited, 0);
    const help = p.lines.join('\n');
    const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} `;
    const missing = Object.keys(agentConfigSchema.shape).filter((k) => k !== 'faults' && !help.includes(flag(k)));
    assert.deepEqual(missing, []);
    assert.ok(!help.includes('--faults'), 'faults are objects: config file only');
    assert.match(
      help,
      /--mqtt-url <url>\s+gateway URL, or several comma-separated to\s+fail over between \(default:\s+mqtt:\/\/127\.0\.0\.1:1883\)/,
    );
  });

  it('an unknown flag exits 2 with usage help', async () => {
    const p = runFleet(['detector', '--windw-ms', '5']);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr.join('\n'), /unknown option '--windw-ms'/);
  });

  it('fleet --help lists every command with its description', async () => {
    const p = runFleet(['--help']);
    assert.equal(await p.exited, 0);
    // Commander wraps descriptions: compare with the whitespace folded.
    const help = p.lines.join('\n').replace(/\s+/g, ' ');
    for (const c of COMMANDS) assert.ok(help.includes(` ${c.name} ${c.description}`), c.name);
  });

  it('every command has --help', async () => {
    for (const cmd of [
      'agent',
      'gateway',
      'detector',
      'dispatcher',
      'console',
      'sim',
      'demo',
      'replay',
      'query',
      'eval',
      'device',
      'device add',
      'hash-password',
    ]) {
      const p = runFleet([...cmd.split(' '), '--help']);
      assert.equal(await p.exited, 0, cmd);
      assert.match(p.lines.join('\n'), new RegExp(`Usage: fleet ${cmd}`));
    }
  });
});
