import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt from 'mqtt';
import { GatewayList } from '../../agent/gateway-list.js';
import { topics } from '../../shared/contract/topics.js';
import { gatewayAddresses } from '../../shared/gateway-urls.js';
import { DEV_SERVICE_TOKEN } from '../../shared/service-token.js';
import { appendBoilingEngine } from '../support/alert-fixtures.js';
import { freePort, getJson, kill, portOpen, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { RedisServer } from '../support/redis-server.js';
import { queryValue } from '../support/sqlite.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const FRESHNESS_MS = 60_000;
/** Far above anything the simulated engines reach: only the injected readings raise an alert. */
const RULES = {
  windowMs: 1000,
  freshnessMs: FRESHNESS_MS,
  rules: [{ name: 'boil', type: 'threshold', sensor: 'engine_temp', above: 130, severity: 'critical' }],
};

interface ClusterHealth {
  ok: boolean;
  clients?: number;
  cluster?: { ok: boolean; redis: string; gatewayId: string; detail?: string };
}

/**
 * Two `fleet gateway` processes linked by a real redis-server, one embedded stream; the
 * detector (and its dispatcher) given both gateways, gw-b first, cabs connected to gw-a: every
 * alert and every acknowledgement crosses the cluster while gw-b is up.
 */
describe('a cluster of two gateways', () => {
  const dir = tempDir('fleet-cluster-');
  const streamPath = join(dir, 'stream.db');
  const redis = new RedisServer();
  const procs: Proc[] = [];
  const gw = {
    a: { name: 'gw-a', port: 0, opsPort: 0, proc: undefined as Proc | undefined },
    b: { name: 'gw-b', port: 0, opsPort: 0, proc: undefined as Proc | undefined },
  };
  type Gw = typeof gw.a;
  const urlOf = (g: Gw) => `mqtt://127.0.0.1:${g.port}`;
  let proxy: TcpProxy | undefined;

  const run = (args: string[]) => {
    const p = runFleet(args);
    procs.push(p);
    return p;
  };
  const startGateway = async (g: Gw, ...extra: string[]) => {
    g.proc = run([
      'gateway',
      '--port',
      String(g.port),
      '--data-dir',
      join(dir, g.name),
      '--stream-path',
      streamPath,
      '--cluster-redis-url',
      redis.url,
      '--ops-port',
      String(g.opsPort),
      ...extra,
    ]);
    await waitFor(`${g.name} listening`, () => portOpen(g.port), 20_000);
    await waitFor(`${g.name} linked to the cluster`, async () => (await health(g)).cluster?.redis === 'connected', 20_000, 100);
  };
  const health = async (g: Gw): Promise<ClusterHealth> => {
    try {
      return (await getJson<ClusterHealth>(`http://127.0.0.1:${g.opsPort}/healthz`)).body;
    } catch {
      return { ok: false };
    }
  };
  const metrics = async (g: Gw) => (await fetch(`http://127.0.0.1:${g.opsPort}/metrics`)).text();

  const startCab = async (vehicle: string, mqttUrl: string) => {
    const p = run([
      'agent',
      '--vehicle',
      vehicle,
      '--mqtt-url',
      mqttUrl,
      '--data-dir',
      join(dir, vehicle),
      '--ops-port',
      '-1',
      '--edge-rules',
      'false',
      '--sim-hz',
      '1',
      '--keepalive-s',
      '5',
      '--reconnect-base-ms',
      '100',
      '--reconnect-max-ms',
      '1000',
    ]);
    await waitFor(`${vehicle} connected`, () => p.lines.some((l) => l.includes('"msg":"connected to gateway"')), 20_000);
    return p;
  };
  const shown = (cab: Proc, alertId: string) =>
    cab.lines.filter((l) => l.includes('"msg":"driver alert"') && l.includes(`"alertId":"${alertId}"`)).length;
  const fleetDb = join(dir, 'cloud', 'fleet.db');
  const alertOf = (vehicle: string) => queryValue<string>(fleetDb, 'SELECT id FROM alerts WHERE vehicle = ?', vehicle);
  const driverDelivery = (alertId: string) =>
    queryValue<string>(fleetDb, "SELECT state FROM deliveries WHERE alert_id = ? AND channel = 'driver'", alertId);

  /** Two seconds of a boiling engine, as a gateway would have appended them to the stream just now; the alert's id. */
  async function boilingEngine(vehicle: string): Promise<string> {
    appendBoilingEngine(streamPath, vehicle);
    return waitFor(`the alert of ${vehicle} raised`, () => alertOf(vehicle), 20_000, 100);
  }

  /** The retained status a service subscribing at a gateway is given for a vehicle, if any. */
  async function retainedStatus(g: Gw, vehicle: string): Promise<Record<string, unknown> | undefined> {
    const client = await mqtt.connectAsync(urlOf(g), {
      username: 'console',
      password: DEV_SERVICE_TOKEN,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      const got = new Promise<Buffer>((resolve) => client.on('message', (_t, payload) => resolve(payload)));
      await client.subscribeAsync(topics.status(vehicle), { qos: 1 });
      const payload = await Promise.race([got, sleep(3000).then(() => undefined)]);
      return payload && (JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
    } finally {
      await client.endAsync(true);
    }
  }

  beforeAll(async () => {
    await redis.start();
    for (const g of [gw.a, gw.b]) {
      g.port = await freePort();
      g.opsPort = await freePort();
      await startGateway(g);
    }
    const rulesFile = join(dir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify(RULES));
    const detector = run([
      'detector',
      '--stream-path',
      streamPath,
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      rulesFile,
      '--mqtt-url',
      `${urlOf(gw.b)},${urlOf(gw.a)}`,
      '--ops-port',
      '-1',
    ]);
    await waitFor('the detector running', () => detector.lines.some((l) => l.includes('"msg":"detector started"')), 20_000);
  });

  afterAll(async () => {
    for (const p of procs) await kill(p, 'SIGKILL');
    await proxy?.close();
    await redis.stop();
  });

  it('brings a live alert sent through one gateway to a cab on the other, and its acknowledgement back', async () => {
    const cab = await startCab('cab-live', urlOf(gw.a));
    // The cab's online status crossed to gw-b, where the dispatcher follows it.
    await waitFor('its online status at gw-b', async () => (await retainedStatus(gw.b, 'cab-live'))?.online === true, 20_000, 200);
    await sleep(1500); // event time moves past the cab's own first readings
    const alertId = await boilingEngine('cab-live');
    await waitFor(`cab-live shows ${alertId}`, () => shown(cab, alertId) > 0, 20_000);
    await waitFor('the ledger says the cab acknowledged it', () => driverDelivery(alertId) === 'acknowledged', 20_000, 100);
    assert.equal(shown(cab, alertId), 1);
    const sent = /fleet_gateway_cluster_messages_total\{direction="sent"[^}]*\} (\d+)/.exec(await metrics(gw.a));
    assert.ok(Number(sent?.[1]) > 0, 'gw-a counts what it sent to the cluster');
  });

  it('sends a live alert through the next gateway of its list while the one the dispatcher used is down', async () => {
    const cab = await startCab('cab-failover', urlOf(gw.a));
    await kill(gw.b.proc!, 'SIGKILL');
    try {
      await sleep(1500);
      const alertId = await boilingEngine('cab-failover');
      await waitFor(`cab-failover shows ${alertId} by way of gw-a`, () => shown(cab, alertId) > 0, 30_000);
      await waitFor('the ledger says the cab acknowledged it', () => driverDelivery(alertId) === 'acknowledged', 20_000, 100);
      assert.equal(shown(cab, alertId), 1);
    } finally {
      await startGateway(gw.b);
    }
  });

  it('keeps an alert for an offline cab, within its freshness, across a restart of each gateway', async () => {
    await kill(await startCab('cab-away', urlOf(gw.a)), 'SIGKILL');
    await sleep(1500);
    const alertId = await boilingEngine('cab-away');
    await waitFor('the alert handed to the gateway', () => driverDelivery(alertId) !== undefined, 20_000, 100);
    for (const g of [gw.a, gw.b]) {
      await kill(g.proc!, 'SIGKILL');
      await startGateway(g);
    }
    assert.notEqual(driverDelivery(alertId), 'acknowledged', 'an offline cab cannot have acknowledged it');
    const cab = await startCab('cab-away', urlOf(gw.a));
    await waitFor(`cab-away shows ${alertId}`, () => shown(cab, alertId) > 0, 30_000);
    await waitFor('the ledger says the cab acknowledged it', () => driverDelivery(alertId) === 'acknowledged', 20_000, 100);
    await sleep(2000);
    assert.equal(shown(cab, alertId), 1, 'shown once, however many copies were sent');
  });

  it('serves a cab that reconnected to the other gateway while its old session hangs half-open, and buzzes once per alert', async () => {
    const vehicle = 'cab-moved';
    proxy = await TcpProxy.start(gw.a.port);
    const viaProxy = `mqtt://127.0.0.1:${proxy.port}`;
    // The list in the order that starts this vehicle on the proxy (to gw-a), with gw-b next.
    const startsOnFirst = new GatewayList(gatewayAddresses(`${viaProxy},${urlOf(gw.b)}`), vehicle).current.url === viaProxy;
    const cab = await startCab(vehicle, startsOnFirst ? `${viaProxy},${urlOf(gw.b)}` : `${urlOf(gw.b)},${viaProxy}`);
    await waitFor('its status at gw-b', async () => (await retainedStatus(gw.b, vehicle))?.gateway === viaProxy, 20_000, 200);

    // The cab's radio drops: it sees its connection go, gw-a does not.
    proxy.halfOpen();
    await waitFor(
      'gw-a closed the old session, taken over by gw-b',
      () => {
        const line = gw.a.proc!.lines.find((l) => l.includes('"msg":"client connected to another gateway: its session here is closed"'));
        return line?.includes(`"vehicle":"${vehicle}"`);
      },
      30_000,
      100,
    );
    // The cab's log line may come a moment after gw-a's.
    await waitFor(
      'the cab says it failed over',
      () => cab.lines.some((l) => l.includes('"msg":"failed over to another gateway"')),
      10_000,
      100,
    );
    for (const g of [gw.a, gw.b]) {
      const status = await waitFor(
        `the status from gw-b at ${g.name}`,
        async () => {
          const s = await retainedStatus(g, vehicle);
          return s?.gateway === urlOf(gw.b) && s;
        },
        20_000,
        200,
      );
      assert.equal(status.online, true, `no Last Will from the old session at ${g.name}`);
    }
    assert.match(await metrics(gw.a), /fleet_gateway_sessions_taken_over_total\{[^}]*\} 1\b/);

    const alertId = await boilingEngine(vehicle);
    await waitFor(`${vehicle} shows ${alertId}`, () => shown(cab, alertId) > 0, 20_000);
    await waitFor('the ledger says the cab acknowledged it', () => driverDelivery(alertId) === 'acknowledged', 20_000, 100);
    await sleep(3000);
    assert.equal(shown(cab, alertId), 1, 'the buzzer sounded once');
  });

  it('shares one port between two gateway processes with --reuse-port, the kernel spreading connections over both', async () => {
    const port = await freePort();
    const shared = [
      { name: 'gw-c', port, opsPort: await freePort(), proc: undefined as Proc | undefined },
      { name: 'gw-d', port, opsPort: await freePort(), proc: undefined as Proc | undefined },
    ];
    for (const g of shared) await startGateway(g, '--reuse-port', 'true');
    const clients = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `shared-${i}`, protocolVersion: 4, reconnectPeriod: 0 }),
      ),
    );
    try {
      const counts = await waitFor(
        'all 24 connected',
        async () => {
          const c = await Promise.all(shared.map(async (g) => (await health(g)).clients ?? 0));
          return c[0]! + c[1]! === 24 && c;
        },
        20_000,
        100,
      );
      assert.ok(
        counts.every((n) => n > 0),
        `both gateways serve some: ${counts.join(' + ')}`,
      );
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
      for (const g of shared) await kill(g.proc!);
    }
  });

  it('goes on alone while Redis is down (healthy, reported), and links up again when it is back', async () => {
    await redis.stop();
    const down = await waitFor(
      'gw-a reports the cluster link down',
      async () => {
        const h = await health(gw.a);
        return h.cluster?.redis === 'down' && h;
      },
      20_000,
      100,
    );
    assert.equal(down.ok, true, 'a gateway without its cluster link still takes telemetry');
    assert.match(String(down.cluster?.detail), /serves its own clients alone/);
    assert.match(await metrics(gw.a), /fleet_gateway_cluster_connected\{[^}]*\} 0\b/);
    // Telemetry still flows: a cab connected to gw-a has its readings acknowledged.
    const cab = await startCab('cab-alone', urlOf(gw.a));
    const buffer = join(dir, 'cab-alone', 'cab-alone.buffer.db');
    await waitFor(
      'readings acknowledged',
      () => Number(queryValue<number>(buffer, "SELECT value FROM meta WHERE key = 'next_seq'")) > 3,
      20_000,
      200,
    );
    await waitFor('the buffer emptied by PUBACKs', () => queryValue<number>(buffer, 'SELECT count(*) FROM readings') === 0, 20_000, 200);
    await kill(cab);

    await redis.start();
    for (const g of [gw.a, gw.b])
      await waitFor(`${g.name} linked again`, async () => (await health(g)).cluster?.redis === 'connected', 20_000, 100);
    const cabBack = await startCab('cab-after', urlOf(gw.a));
    await waitFor('its status crossed to gw-b again', async () => (await retainedStatus(gw.b, 'cab-after'))?.online === true, 20_000, 500);
    await kill(cabBack);
  });
});
