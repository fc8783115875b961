import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, kill, runFleet, tempDir, waitFor, within, type Proc } from '../support/harness.js';
import { ROOT } from '../support/paths.js';

const PKI = join(ROOT, 'scripts', 'pki.sh');
const pki = (dir: string, ...args: string[]) => execFileSync('bash', [PKI, dir, ...args], { encoding: 'utf8' });

const batch = (vehicle: string, seq: number, count = 1) => {
  const readings: Reading[] = Array.from({ length: count }, (_, i) => ({
    vehicle,
    seq: seq + i,
    ts: Date.now() - 1000 + i,
    clock: 'synced',
    sensor: 'engine_temp',
    value: 88 + i / 100,
    quality: 'good',
  }));
  return encodeBatch({ vehicle, headTs: readings.at(-1)!.ts, readings });
};

/** Connects once, no retries: resolves the client or rejects with the CONNACK's code. */
function connect(url: string, opts: IClientOptions): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, protocolVersion: 4, ...opts });
    client.once('connect', () => resolve(client));
    client.once('error', (err) => {
      client.end(true);
      reject(err);
    });
    client.once('close', () => reject(new Error('closed before CONNACK')));
  });
}

/** The SUBACK's codes, 128 for a refused filter (mqtt.js reports any refusal as an error carrying the packet). */
const grantedQos = (client: MqttClient, filters: string[]): Promise<number[]> =>
  new Promise((resolve, reject) =>
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const packet = err && 'packet' in err ? (err.packet as { granted: number[] } | undefined) : undefined;
      if (packet) return resolve(packet.granted);
      if (err) return reject(err);
      resolve(granted!.map((g) => g.qos));
    }),
  );

const refusalCode = async (p: Promise<MqttClient>) => {
  const err = await p.then(
    (c) => {
      c.end(true);
      return undefined;
    },
    (e: Error & { code?: number }) => e,
  );
  assert.ok(err, 'the connection was accepted');
  return err.code;
};

async function metricValue(cloud: Cloud, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await cloud.gateway.registry.getSingleMetric(name)!.get();
  return metric.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('mutual TLS: the vehicle id comes from its certificate', () => {
  const dir = tempDir();
  const ca = join(dir, 'pki');
  const rogue = join(dir, 'rogue-pki');
  /** A foreign CA under the fleet CA's own name. */
  const twin = join(dir, 'twin-pki');
  let cloud: Cloud;
  let url: string;
  const tls = (name: string, from = ca) => ({
    cert: readFileSync(join(from, 'issued', `${name}.crt`)),
    key: readFileSync(join(from, 'issued', `${name}.key`)),
    ca: readFileSync(join(ca, 'ca.crt')),
  });
  const clients: MqttClient[] = [];
  let agent: Proc | undefined;

  beforeAll(async () => {
    pki(ca, 'init');
    pki(ca, 'server', 'gateway', 'IP:127.0.0.1', 'DNS:localhost');
    for (const v of ['truck-1', 'truck-2', 'truck-3', 'truck-agent']) pki(ca, 'enroll', v);
    pki(ca, 'service', 'console');
    execFileSync('bash', [PKI, rogue, 'init'], { env: { ...process.env, PKI_CA_NAME: 'rogue CA' } });
    pki(rogue, 'enroll', 'truck-1');
    pki(twin, 'init');
    pki(twin, 'enroll', 'truck-1');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-subj',
        '/OU=vehicle/CN=truck-1',
        '-keyout',
        join(dir, 'self.key'),
        '-out',
        join(dir, 'self.crt'),
      ],
      { stdio: 'ignore' },
    );
    cloud = await new Cloud({
      dir,
      gateway: {
        auth: 'mtls',
        tlsCert: join(ca, 'issued', 'gateway.crt'),
        tlsKey: join(ca, 'issued', 'gateway.key'),
        tlsCa: join(ca, 'ca.crt'),
        tlsCrl: join(ca, 'crl.pem'),
        servicePort: await freePort(),
      },
    }).start();
    url = `mqtts://127.0.0.1:${cloud.gateway.port}`;
  });

  afterAll(async () => {
    if (agent) await kill(agent, 'SIGTERM');
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cloud.stop();
  });

  it('a vehicle with its certificate connects, and its readings are stored', async () => {
    const c = await connect(url, { clientId: 'truck-1', ...tls('truck-1') });
    clients.push(c);
    await c.publishAsync(topics.telemetry('truck-1'), batch('truck-1', 1, 3), { qos: 1 });
    await waitFor('the readings stored', () => storedSeqs(cloud.detector, 'truck-1').length === 3, 5000);
    assert.deepEqual(storedSeqs(cloud.detector, 'truck-1'), [1, 2, 3]);
  });

  it("refuses a device without a certificate, with another CA's, or under another vehicle's id, saying why", async () => {
    assert.equal(await refusalCode(connect(url, { clientId: 'truck-1', ca: readFileSync(join(ca, 'ca.crt')) })), 5);
    assert.equal(await refusalCode(connect(url, { clientId: 'truck-1', ...tls('truck-1', rogue) })), 5);
    assert.equal(await refusalCode(connect(url, { clientId: 'truck-2', ...tls('truck-1') })), 2);
    assert.equal(
      await refusalCode(connect(cloud.serviceMqttUrl, { clientId: 'truck-1' })),
      5,
      'the plain service listener takes no vehicles',
    );
    for (const reason of ['no_certificate', 'untrusted_certificate', 'identity_mismatch']) {
      assert.ok((await metricValue(cloud, 'fleet_gateway_connections_refused_total', { reason })) >= 1, reason);
    }
    // The log is written asynchronously: wait for the last refusal's line.
    const log = await waitFor(
      'the refusals logged',
      () => {
        const text = readFileSync(join(dir, 'cloud.log'), 'utf8');
        return text.includes('"reason":"identity_mismatch"') && text;
      },
      5000,
    );
    assert.match(
      log,
      /"reason":"untrusted_certificate","detail":"certificate truck-1 \(serial [0-9A-F]+\) not accepted: [^"]+ \([A-Z_]+\)".*"msg":"connection refused"/,
    );
    assert.match(log, /"reason":"identity_mismatch","detail":"certificate is for truck-1, client id is truck-2"/);
  });

  it('refuses a certificate of a foreign CA named like the fleet CA, and a self-signed one, with CONNACK 5 and the real reason', async () => {
    const untrusted = () => metricValue(cloud, 'fleet_gateway_connections_refused_total', { reason: 'untrusted_certificate' });
    const before = await untrusted();
    const files = (cert: string, key: string) => ({
      cert: readFileSync(cert),
      key: readFileSync(key),
      ca: readFileSync(join(ca, 'ca.crt')),
    });
    for (let i = 0; i < 3; i++) {
      assert.equal(await refusalCode(connect(url, { clientId: 'truck-1', ...tls('truck-1', twin) })), 5, 'foreign CA of the same name');
      assert.equal(
        await refusalCode(connect(url, { clientId: 'truck-1', ...files(join(dir, 'self.crt'), join(dir, 'self.key')) })),
        5,
        'self-signed',
      );
    }
    assert.equal((await untrusted()) - before, 6);
    const log = await waitFor(
      'both refusals logged',
      () => {
        const text = readFileSync(join(dir, 'cloud.log'), 'utf8');
        return text.includes('DEPTH_ZERO_SELF_SIGNED_CERT') && text;
      },
      5000,
    );
    assert.match(
      log,
      /"detail":"certificate truck-1 \(serial [0-9A-F]+\) not accepted: it is not signed by the fleet CA \(another CA, perhaps of the same name\) \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)"/,
    );
    assert.match(
      log,
      /"detail":"certificate truck-1 \(serial [0-9A-F]+\) not accepted: it is self-signed, not issued by the fleet CA \(DEPTH_ZERO_SELF_SIGNED_CERT\)"/,
    );
    assert.doesNotMatch(log, /UNABLE_TO_GET_CRL/);
  });

  it('logs and counts a failed TLS handshake, which never reaches MQTT', async () => {
    const before = await metricValue(cloud, 'fleet_gateway_connections_refused_total', { reason: 'tls_handshake' });
    // Plain MQTT on the mqtts port.
    const socket = tcpConnect(cloud.gateway.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.once('connect', () => socket.write(Buffer.from([0x10, 12, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 0])));
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await waitFor(
      'the handshake failure counted',
      async () => (await metricValue(cloud, 'fleet_gateway_connections_refused_total', { reason: 'tls_handshake' })) === before + 1,
      5000,
    );
    await waitFor(
      'and logged',
      () => /"reason":"tls_handshake","detail":"[^"]+","msg":"connection refused"/.test(readFileSync(join(dir, 'cloud.log'), 'utf8')),
      5000,
    );
  });

  it('a vehicle cannot publish under another vehicle or follow its alerts', async () => {
    const c = await connect(url, { clientId: 'truck-2', ...tls('truck-2') });
    clients.push(c);
    assert.deepEqual(await grantedQos(c, [topics.alerts('truck-1'), topics.alerts('truck-2')]), [128, 1], 'only its own alerts');
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.publish(topics.telemetry('truck-1'), batch('truck-1', 50), { qos: 1 });
    await closed;
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(storedSeqs(cloud.detector, 'truck-1'), [1, 2, 3], 'nothing stored under truck-1');
    assert.equal(await metricValue(cloud, 'fleet_gateway_refused_total', { reason: 'foreign_topic' }), 1);
    assert.equal(await metricValue(cloud, 'fleet_gateway_subscriptions_refused_total', { reason: 'foreign_topic' }), 1);
  });

  it('a revoked vehicle is cut off and refused from then on, without a gateway restart', async () => {
    const session = await connect(url, { clientId: 'truck-3', ...tls('truck-3') });
    pki(ca, 'revoke', 'truck-3');
    await waitFor('the open session of truck-3 cut off', () => !session.connected, 10_000, 100);
    session.end(true);
    const code = await waitFor(
      'truck-3 refused',
      async () => {
        const c = await connect(url, { clientId: 'truck-3', ...tls('truck-3') }).then(
          (client) => {
            client.end(true);
            return undefined;
          },
          (e: Error & { code?: number }) => e.code,
        );
        return c;
      },
      10_000,
      300,
    );
    assert.equal(code, 5);
    assert.ok((await metricValue(cloud, 'fleet_gateway_connections_refused_total', { reason: 'revoked' })) >= 1);
    const still = await connect(url, { clientId: 'truck-2', ...tls('truck-2') });
    clients.push(still);
  });

  it('services have their own rights: a console follows status but publishes nothing', async () => {
    const consoleCert = await connect(url, { clientId: 'console-t', ...tls('console') });
    clients.push(consoleCert);
    assert.deepEqual(await grantedQos(consoleCert, [topics.allStatus, 'fleet/v1/+/telemetry']), [1, 128]);
    const closed = new Promise<void>((resolve) => consoleCert.once('close', () => resolve()));
    consoleCert.publish(topics.alerts('truck-1'), Buffer.from('{}'), { qos: 1 });
    await closed;
    assert.equal(await metricValue(cloud, 'fleet_gateway_refused_total', { reason: 'service_denied' }), 1);
    assert.equal(await refusalCode(connect(cloud.serviceMqttUrl, { clientId: 'x', username: 'dispatcher', password: 'wrong-token' })), 4);
  });

  it('the agent connects over mqtts with its certificate and its readings are stored', async () => {
    const files = (name: string) => [join(ca, 'issued', `${name}.crt`), join(ca, 'issued', `${name}.key`)];
    const [cert, key] = files('truck-agent');
    agent = runFleet([
      'agent',
      '--vehicle',
      'truck-agent',
      '--mqtt-url',
      url,
      '--tls-cert',
      cert!,
      '--tls-key',
      key!,
      '--tls-ca',
      join(ca, 'ca.crt'),
      '--data-dir',
      join(dir, 'agent'),
      '--ops-port',
      '-1',
      '--sim-hz',
      '5',
    ]);
    await waitFor("the agent's readings stored", () => storedSeqs(cloud.detector, 'truck-agent').length >= 10, 20_000, 100);
  });
});

describe('password mode: per-vehicle secrets stored hashed', () => {
  const dir = tempDir();
  const credentials = join(dir, 'devices.json');
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, gateway: { auth: 'password', credentialsFile: credentials } }).start();
  });

  afterAll(async () => {
    await cloud.stop();
  });

  const enroll = async (vehicle: string) => {
    const p = runFleet(['device', 'add', vehicle, '--credentials-file', credentials]);
    assert.equal(await p.exited, 0, p.stderr.join('\n'));
    return p.lines[0]!;
  };

  it('an enrolled vehicle connects with its secret; wrong, missing or unknown ones get CONNACK 4', async () => {
    const secret = await enroll('truck-p');
    assert.match(secret, /^[\w-]{32}$/);
    assert.ok(!readFileSync(credentials, 'utf8').includes(secret), 'the file holds no secret in clear');
    await waitFor(
      'the gateway re-read the credentials',
      async () => {
        const ok = await connect(cloud.mqttUrl, { clientId: 'truck-p', username: 'truck-p', password: secret }).then(
          (c) => c.endAsync().then(() => true),
          () => false,
        );
        return ok;
      },
      5000,
      200,
    );
    assert.equal(await refusalCode(connect(cloud.mqttUrl, { clientId: 'truck-p', username: 'truck-p', password: 'guess' })), 4);
    assert.equal(await refusalCode(connect(cloud.mqttUrl, { clientId: 'truck-p' })), 4);
    assert.equal(await refusalCode(connect(cloud.mqttUrl, { clientId: 'truck-x', username: 'truck-x', password: secret })), 4);
    assert.equal(
      await refusalCode(connect(cloud.mqttUrl, { clientId: 'truck-x', username: 'truck-p', password: secret })),
      2,
      'a secret is bound to its vehicle',
    );
  });

  it('`fleet agent` given only its secret connects as its vehicle id', async () => {
    const secret = await enroll('truck-pw');
    const agent = runFleet(
      [
        'agent',
        '--vehicle',
        'truck-pw',
        '--mqtt-url',
        cloud.mqttUrl,
        '--data-dir',
        join(dir, 'agent-pw'),
        '--ops-port',
        '-1',
        '--sim-hz',
        '5',
      ],
      { FLEET_PASSWORD: secret },
    );
    try {
      await waitFor("the agent's readings stored", () => storedSeqs(cloud.detector, 'truck-pw').length >= 10, 20_000, 100);
    } finally {
      await kill(agent, 'SIGKILL');
    }
  });

  it('`fleet device add` enrols several vehicles at once, and `fleet sim` connects each with its secret', async () => {
    const vehicles = ['sim-01', 'sim-02', 'sim-03'];
    const p = runFleet(['device', 'add', ...vehicles, '--credentials-file', credentials]);
    assert.equal(await p.exited, 0, p.stderr.join('\n'));
    assert.equal(p.lines.length, vehicles.length, 'one secret per line, in the order given');
    const secretsFile = join(dir, 'sim-secrets.json');
    writeFileSync(secretsFile, JSON.stringify(Object.fromEntries(vehicles.map((v, i) => [v, p.lines[i]]))));
    const sim = runFleet([
      'sim',
      ...['--trucks', '3', '--prefix', 'sim-', '--mqtt-url', cloud.mqttUrl, '--secrets-file', secretsFile],
      ...['--data-dir', join(dir, 'sim'), '--ops-port', '-1', '--sim-hz', '5'],
    ]);
    try {
      await waitFor(
        "every simulated truck's readings stored",
        () => vehicles.every((v) => storedSeqs(cloud.detector, v).length >= 10),
        20_000,
        100,
      );
    } finally {
      await kill(sim, 'SIGKILL');
    }
  });

  it('a revoked vehicle is cut off within seconds, and gets CONNACK 5 when it comes back', async () => {
    const secret = await enroll('truck-r');
    const session = await waitFor(
      'truck-r accepted',
      () => connect(cloud.mqttUrl, { clientId: 'truck-r', username: 'truck-r', password: secret }).catch(() => undefined),
      5000,
      200,
    );
    const p = runFleet(['device', 'revoke', 'truck-r', '--credentials-file', credentials]);
    assert.equal(await p.exited, 0);
    await waitFor('the open session of truck-r cut off', () => !session.connected, 5000, 50);
    session.end(true);
    const code = await waitFor(
      'truck-r refused',
      () =>
        connect(cloud.mqttUrl, { clientId: 'truck-r', username: 'truck-r', password: secret }).then(
          (c) => c.endAsync().then(() => undefined),
          (e: Error & { code?: number }) => e.code,
        ),
      5000,
      200,
    );
    assert.equal(code, 5);
  });

  it('refuses to start with the development service token beyond loopback, naming the variable to set', async () => {
    const args = [
      'gateway',
      '--auth',
      'password',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--ops-port',
      '-1',
      '--data-dir',
      join(dir, 'public'),
    ];
    const p = runFleet(args, { FLEET_SERVICE_TOKEN: '' });
    try {
      assert.equal(await within('the gateway to exit', p.exited, 10_000), 2, p.lines.join('\n'));
    } finally {
      await kill(p);
    }
    assert.match(
      p.stderr.join('\n'),
      /serviceToken: the development service token is public, so it is only allowed while the gateway listens on loopback; set FLEET_SERVICE_TOKEN/,
    );
    // With a token of its own it listens there.
    const own = runFleet(args, { FLEET_SERVICE_TOKEN: 'a-secret-of-our-own' });
    try {
      await waitFor('the gateway listening on every address', () => own.lines.some((l) => l.includes('"msg":"gateway listening"')), 10_000);
    } finally {
      await kill(own);
    }
  });

  it('refuses to listen beyond loopback in open mode', async () => {
    const p = runFleet(['gateway', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(dir, 'open')]);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr.join('\n'), /auth: open auth trusts any client id, so it only listens on loopback/);
  });
});
