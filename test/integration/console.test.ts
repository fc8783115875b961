import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as connectTcp, createServer, type AddressInfo, type Server, type Socket as NetSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { hashPassword } from '../../cloud/console/passwords.js';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { storeAlertEvents, storeReadings } from '../support/store-contract.js';
import type { StoredAlert } from '../../cloud/store/stored-alert.js';
import { alertId, type Alert, type Severity } from '../../shared/contract/alert.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { createLogger } from '../../shared/log.js';
import { exitWithin, kill, runFleet, tempDir } from '../support/harness.js';
import { openEvents } from '../support/event-stream.js';

const SERVICE_TOKEN = 'service-secret';
const WRITE_TOKEN = 'write-secret';
const NOW = Date.now();

// ---- fixtures ----

interface Broker {
  port: number;
  close(): Promise<void>;
}

/** A bare aedes broker that authenticates like the gateway: `service` needs the token, anyone else may connect. */
async function startBroker(port = 0): Promise<Broker> {
  const broker = await Aedes.createBroker({
    authenticate: (_client, username, password, done) => {
      if (username !== 'service') return done(null, true);
      done(null, password?.toString() === SERVICE_TOKEN);
    },
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serviceClient(port: number): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: `test-${process.pid}-${Math.random().toString(16).slice(2)}`,
    username: 'service',
    password: SERVICE_TOKEN,
    reconnectPeriod: 0,
  });
}

async function publishStatus(client: MqttClient, vehicle: string, online: boolean, at = Date.now()): Promise<void> {
  await client.publishAsync(topics.status(vehicle), JSON.stringify({ online, at }), { qos: 1, retain: true });
}

function reading(vehicle: string, seq: number, sensor: Reading['sensor'], value: number, ts: number): Reading {
  const r: Reading = { vehicle, seq, ts, sensor, value, quality: 'good', clock: 'synced' };
  if (sensor === 'gps') r.position = { lat: 52.37, lon: 4.89, heading: 90, fix: '3d' };
  return r;
}

function makeAlert(vehicle: string, rule: string, severity: Severity, episodeStart: number, live: boolean): Alert {
  return {
    id: alertId(vehicle, rule, episodeStart),
    vehicle,
    rule,
    severity,
    sensor: 'engine_temp',
    episodeStart,
    windowStart: episodeStart,
    windowEnd: episodeStart + 10_000,
    observed: 121.5,
    expected: 105,
    message: 'engine_temp mean 121.5 °C above 105 °C',
    live,
    raisedAt: episodeStart + 10_500,
    closedAt: episodeStart + 10_000,
  };
}

/** Polls until `probe` returns something truthy; fails with `what` after the deadline. */
async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function api(url: string, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>) },
  });
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

function post(url: string, path: string, opts: { token?: string; body?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  return api(url, path, { method: 'POST', headers, body: opts.body });
}

// ---- the test ----

describe('console server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-console-'));
  const storePath = join(dir, 'fleet.db');
  const critical = makeAlert('truck-1', 'engine-overheat', 'critical', NOW - 60_000, true);
  const warning = makeAlert('truck-2', 'engine-temp-rise', 'warning', NOW - 120_000, false);
  let detectorStore: SqliteStore;
  let broker: Broker;
  let publisher: MqttClient;
  let server: ConsoleServer;
  let url: string;

  beforeAll(async () => {
    detectorStore = new SqliteStore(storePath);
    await storeReadings(
      detectorStore,
      [
        reading('truck-1', 1, 'engine_temp', 92.5, NOW - 1000),
        reading('truck-1', 2, 'speed', 81, NOW - 1000),
        reading('truck-1', 3, 'container_temp', 4.2, NOW - 120_000),
        reading('truck-2', 1, 'gps', 60, NOW - 2000),
        reading('truck-3', 1, 'rpm', 1500, NOW - 3000),
      ],
      NOW,
    );
    await storeAlertEvents(
      detectorStore,
      [
        { kind: 'raised', alert: critical },
        { kind: 'raised', alert: warning },
      ],
      NOW,
    );

    broker = await startBroker();
    publisher = await serviceClient(broker.port);
    await publishStatus(publisher, 'truck-1', true);
    await publishStatus(publisher, 'truck-2', true);

    server = new ConsoleServer(
      {
        host: '127.0.0.1',
        port: 0,
        store: storePath,
        mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
        serviceToken: SERVICE_TOKEN,
        consoleToken: WRITE_TOKEN,
        publicReads: true,
      },
      createLogger('console', { level: 'silent' }),
    );
    await server.start();
    url = server.url;
  });

  afterAll(async () => {
    await server?.stop();
    await publisher?.endAsync(true);
    await broker?.close();
    await detectorStore?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists vehicles from the store and MQTT status, with latest values and staleness', async () => {
    const vehicles = await waitFor('both statuses', async () => {
      const { body } = await api(url, '/api/vehicles');
      return body.filter((v: any) => v.online).length === 2 && body;
    });
    assert.deepEqual(
      vehicles.map((v: any) => v.id),
      ['truck-1', 'truck-2', 'truck-3'],
    );
    const [t1, t2, t3] = vehicles;
    assert.equal(t1.values.engine_temp.value, 92.5);
    assert.equal(t1.values.engine_temp.stale, false);
    assert.equal(t1.values.container_temp.stale, true, 'a two-minute-old value is stale');
    assert.equal(t1.values.speed.value, 81);
    assert.equal(t1.lastSeen, NOW - 1000);
    assert.equal(t1.activeAlerts, 1);
    assert.deepEqual(
      { lat: t2.values.gps.lat, lon: t2.values.gps.lon, heading: t2.values.gps.heading },
      { lat: 52.37, lon: 4.89, heading: 90 },
    );
    assert.equal(typeof t2.statusAt, 'number');
    assert.equal(t3.online, false, 'no status document: not online');
    assert.equal(t3.statusAt, null);
    assert.equal(server.vehicleStatus().get('truck-1')?.online, true);
  });

  it('filters alerts and lists them newest first', async () => {
    const all = await api(url, '/api/alerts');
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.map((a: StoredAlert) => a.id),
      [critical.id, warning.id],
    );
    assert.deepEqual(
      (await api(url, '/api/alerts?vehicle=truck-2')).body.map((a: StoredAlert) => a.id),
      [warning.id],
    );
    assert.deepEqual(
      (await api(url, '/api/alerts?severity=critical')).body.map((a: StoredAlert) => a.id),
      [critical.id],
    );
    assert.deepEqual(
      (await api(url, '/api/alerts?limit=1')).body.map((a: StoredAlert) => a.id),
      [critical.id],
    );
    assert.equal((await api(url, '/api/alerts?state=cleared')).body.length, 0);
    assert.equal((await api(url, '/api/alerts?state=&severity=')).body.length, 2, 'empty values mean any');
  });

  it('refuses bad filters with a clear message', async () => {
    assert.deepEqual(await api(url, '/api/alerts?state=foo'), {
      status: 400,
      body: { error: 'state: must be one of active, acknowledged, cleared' },
    });
    for (const query of [
      'limit=-1',
      'limit=1.5',
      'limit=5000',
      'severity=loud',
      'vehicle=a/b',
      'status=active',
      'state=active&state=cleared',
    ]) {
      const res = await api(url, `/api/alerts?${query}`);
      assert.equal(res.status, 400, query);
      assert.match(res.body.error, /^\w+: /, query);
    }
  });

  it('returns one alert by id, and 404 for an unknown one', async () => {
    const one = await api(url, `/api/alerts/${encodeURIComponent(critical.id)}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.state, 'active');
    assert.equal(one.body.observed, 121.5);
    const missing = await api(url, '/api/alerts/truck-9.nope.1');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /no alert with id truck-9\.nope\.1/);
  });

  it('requires the write token and valid input to acknowledge', async () => {
    const path = `/api/alerts/${encodeURIComponent(critical.id)}/ack`;
    const noToken = await post(url, path);
    assert.equal(noToken.status, 401);
    assert.ok(noToken.body.error);
    assert.equal((await post(url, path, { token: 'wrong' })).status, 401);
    assert.equal((await post(url, path, { token: `${WRITE_TOKEN}x` })).status, 401);
    assert.equal((await post(url, path, { token: WRITE_TOKEN, body: '{"by":' })).status, 400);
    assert.equal((await post(url, path, { token: WRITE_TOKEN, body: JSON.stringify({ by: 'x'.repeat(65) }) })).status, 400);
    assert.equal((await post(url, path, { token: WRITE_TOKEN, body: JSON.stringify({ by: 'x'.repeat(5000) }) })).status, 413);
    assert.equal((await detectorStore.getAlert(critical.id))!.state, 'active', 'refused requests change nothing');
    const unknown = await post(url, '/api/alerts/truck-9.nope.1/ack', { token: WRITE_TOKEN });
    assert.equal(unknown.status, 404);
  });

  it('acknowledges with the token, streams the change, then clears', async () => {
    const stream = openEvents(url);
    try {
      await waitFor('hello', () => stream.events.some((e) => e.event === 'hello'));
      const acked = await post(url, `/api/alerts/${encodeURIComponent(critical.id)}/ack`, {
        token: WRITE_TOKEN,
        body: JSON.stringify({ by: 'alice' }),
      });
      assert.equal(acked.status, 200);
      assert.equal(acked.body.state, 'acknowledged');
      assert.equal(acked.body.ackedBy, 'alice');
      assert.equal(typeof acked.body.ackedAt, 'number');

      const event = await waitFor('alert event', () => stream.events.find((e) => e.event === 'alert' && e.data.id === critical.id));
      assert.equal(event.data.change, 'acknowledged');
      assert.equal(event.data.state, 'acknowledged');
      assert.equal(event.data.vehicle, 'truck-1');

      await publishStatus(publisher, 'truck-2', false);
      const status = await waitFor('status event', () =>
        stream.events.find((e) => e.event === 'status' && e.data.vehicle === 'truck-2' && e.data.online === false),
      );
      assert.equal(typeof status.data.at, 'number');
    } finally {
      stream.close();
    }

    const cleared = await post(url, `/api/alerts/${encodeURIComponent(critical.id)}/clear`, { token: WRITE_TOKEN });
    assert.equal(cleared.status, 200);
    assert.equal(cleared.body.state, 'cleared');
    assert.equal(cleared.body.clearedBy, 'console');
    assert.equal(cleared.body.ackedBy, 'alice');

    const ackAfterClear = await post(url, `/api/alerts/${encodeURIComponent(critical.id)}/ack`, { token: WRITE_TOKEN });
    assert.equal(ackAfterClear.status, 200);
    assert.equal(ackAfterClear.body.state, 'cleared', 'the lifecycle never goes back');
  });

  it('reports stats, health, metrics and the page', async () => {
    const stats = await api(url, '/api/stats');
    assert.deepEqual(stats.body, { readingsStored: 5, duplicates: 0, alerts: { active: 1, acknowledged: 0, cleared: 1 } });

    const health = await api(url, '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.ok, true);
    assert.equal(health.body.mqtt.connected, true);

    const metrics = await api(url, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /fleet_console_alert_actions_total\{action="acknowledge"[^}]*\} 2/);

    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await page.text(), /<title>Fleet console<\/title>/);
  });

  it('answers unknown paths with 404 and wrong methods with 405, as JSON', async () => {
    const missing = await api(url, '/nope');
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /no such path \/nope/);
    const wrongMethod = await api(url, '/api/alerts', { method: 'DELETE' });
    assert.equal(wrongMethod.status, 405);
    assert.match(wrongMethod.body.error, /use GET/);
    assert.equal((await api(url, `/api/alerts/${encodeURIComponent(critical.id)}/ack`)).status, 405);
    assert.equal((await api(url, '/api/alerts/%E0%A4%A')).status, 400);
  });

  it('reconnects when the gateway comes back', async () => {
    const { port } = broker;
    await publisher.endAsync(true);
    await broker.close();
    await waitFor('disconnect', async () => (await api(url, '/healthz')).body.mqtt.connected === false);

    broker = await startBroker(port);
    publisher = await serviceClient(port);
    await publishStatus(publisher, 'truck-3', true);
    await waitFor('status after reconnect', () => server.vehicleStatus().get('truck-3')?.online, 8000);
    assert.equal((await api(url, '/healthz')).body.mqtt.connected, true);
  });
});

describe('console sign-in, history and live values', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-console-auth-'));
  const storePath = join(dir, 'fleet.db');
  const alert = makeAlert('truck-1', 'engine-overheat', 'critical', NOW - 30_000, true);
  let detectorStore: SqliteStore;
  let broker: Broker;
  let server: ConsoleServer;
  let url: string;
  let origin: string;

  const signIn = (user: string, password: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ user, password }),
    });
  const cookieOf = (res: Response) => res.headers.get('set-cookie')!.split(';')[0]!;

  beforeAll(async () => {
    detectorStore = new SqliteStore(storePath);
    await storeReadings(
      detectorStore,
      [
        reading('truck-1', 1, 'engine_temp', 90, NOW - 60_000),
        reading('truck-1', 2, 'engine_temp', 96, NOW - 30_000),
        reading('truck-1', 3, 'gps', 50, NOW - 30_000),
        reading('truck-1', 4, 'engine_temp', 99, NOW - 20 * 60_000),
      ],
      NOW,
    );
    await storeAlertEvents(detectorStore, [{ kind: 'raised', alert }], NOW);
    broker = await startBroker();
    server = new ConsoleServer(
      {
        host: '127.0.0.1',
        port: 0,
        store: storePath,
        mqttUrl: `mqtt://127.0.0.1:${broker.port}`,
        serviceToken: SERVICE_TOKEN,
        consoleToken: WRITE_TOKEN,
        consoleUsers: [`alice:${await hashPassword('alice-password')}`],
      },
      createLogger('console', { level: 'silent' }),
    );
    await server.start();
    url = server.url;
    origin = url;
  });

  afterAll(async () => {
    await server?.stop();
    await broker?.close();
    await detectorStore?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its scripts and the vendored libraries under a strict content security policy', async () => {
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'; style-src 'self'/);
    assert.match(await page.text(), /<script type="module" src="\/app\/main.js">/);
    for (const path of ['/app/main.js', '/vendor/leaflet/leaflet-src.esm.js', '/vendor/uplot/uPlot.esm.js']) {
      const res = await fetch(`${url}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /text\/javascript/, path);
    }
    assert.equal((await fetch(`${url}/vendor/leaflet/leaflet.css`)).headers.get('content-type'), 'text/css; charset=utf-8');
    for (const path of ['/app/..%2Fhttp.js', '/app/nope.js', '/vendor/zod/index.js', '/app/.hidden.js']) {
      assert.equal((await fetch(`${url}${path}`)).status, 404, path);
    }
  });

  it('keeps reads behind a sign-in, and says so', async () => {
    const config = await api(url, '/api/config');
    assert.equal(config.status, 200);
    assert.equal(config.body.user, null);
    assert.equal(config.body.publicReads, false);
    assert.equal(config.body.tileUrl, '');
    assert.deepEqual(config.body.rules.find((r: any) => r.name === 'engine-overheat').above, 105);
    for (const path of ['/api/vehicles', '/api/alerts', '/api/tracks', '/api/events', '/api/stats', '/api/vehicles/truck-1/series']) {
      const res = await api(url, path);
      assert.equal(res.status, 401, path);
      assert.match(res.body.error, /sign in/, path);
    }
    assert.equal((await api(url, '/healthz')).status, 200, 'ops endpoints stay open');
  });

  it('signs a user in with their password, into an HttpOnly SameSite=Strict session', async () => {
    assert.equal((await signIn('alice', 'wrong')).status, 401);
    assert.equal((await signIn('alice', WRITE_TOKEN)).status, 401, 'the token does not stand in for a configured user');
    assert.equal((await signIn('alice', 'alice-password', { origin: 'http://evil.example' })).status, 403);
    const bad = await api(url, '/api/session', { method: 'POST', body: JSON.stringify({ user: 'alice', password: 'x', role: 'admin' }) });
    assert.deepEqual(bad, { status: 400, body: { error: 'body: unknown field role; only "user", "password" accepted' } });
    assert.match(
      (await api(url, '/api/session', { method: 'POST', body: JSON.stringify({ user: '', password: 'x' }) })).body.error,
      /^user: /,
    );

    const ok = await signIn('alice', 'alice-password');
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('set-cookie')!, /^fleet_session=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
    const cookie = cookieOf(ok);
    assert.equal((await api(url, '/api/config', { headers: { cookie } })).body.user, 'alice');
    assert.equal((await api(url, '/api/vehicles', { headers: { cookie } })).status, 200);
  });

  it('records the signed-in user on a write, and refuses one carried by the cookie from another site', async () => {
    const cookie = cookieOf(await signIn('alice', 'alice-password'));
    const path = `/api/alerts/${encodeURIComponent(alert.id)}/ack`;
    const noOrigin = await api(url, path, { method: 'POST', headers: { cookie } });
    assert.equal(noOrigin.status, 403);
    assert.match(noOrigin.body.error, /^origin: /);
    assert.equal((await api(url, path, { method: 'POST', headers: { cookie, origin: 'http://evil.example' } })).status, 403);
    assert.equal((await detectorStore.getAlert(alert.id))!.state, 'active');

    const acked = await api(url, path, {
      method: 'POST',
      headers: { cookie, origin, 'content-type': 'application/json' },
      body: JSON.stringify({ by: 'mallory' }),
    });
    assert.equal(acked.status, 200);
    assert.equal(acked.body.ackedBy, 'alice', 'a session acts under its own name');
  });

  it('signs anyone else in by name with the token, and signs out', async () => {
    const res = await signIn('bob', WRITE_TOKEN);
    assert.equal(res.status, 200);
    const cookie = cookieOf(res);
    assert.equal((await api(url, '/api/config', { headers: { cookie } })).body.user, 'bob');
    const out = await api(url, '/api/session', { method: 'DELETE', headers: { cookie, origin } });
    assert.equal(out.status, 200);
    assert.equal((await api(url, '/api/vehicles', { headers: { cookie } })).status, 401, 'the session is gone');
  });

  it("gives a vehicle's last 15 minutes and every track, and refuses a bad vehicle id", async () => {
    const auth = { headers: { authorization: `Bearer ${WRITE_TOKEN}` } };
    const series = await api(url, '/api/vehicles/truck-1/series', auth);
    assert.deepEqual(
      series.body.engine_temp,
      [
        [NOW - 60_000, NOW - 30_000],
        [90, 96],
      ],
      'the 20-minute-old reading is left out',
    );
    assert.deepEqual(series.body.speed, [[], []]);
    const tracks = await api(url, '/api/tracks', auth);
    assert.deepEqual(tracks.body, { 'truck-1': [[52.37, 4.89, NOW - 30_000]] });
    const bad = await api(url, '/api/vehicles/truck%201/series', auth);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /^vehicle: /);
  });

  it('streams new latest values as they are stored', async () => {
    const stream = openEvents(url, { authorization: `Bearer ${WRITE_TOKEN}` });
    try {
      await waitFor('the first values frame', () => stream.events.find((e) => e.event === 'values'));
      await storeReadings(detectorStore, [reading('truck-1', 5, 'engine_temp', 101.5, Date.now())], Date.now());
      const frame = await waitFor('the new value', () =>
        stream.events.find((e) => e.event === 'values' && e.data.some((v: any) => v.values.engine_temp?.value === 101.5)),
      );
      assert.deepEqual(Object.keys(frame.data[0].values), ['engine_temp'], 'only what changed');
    } finally {
      stream.close();
    }
  });
});

describe('fleet console and its built-in secrets', () => {
  const dir = tempDir('fleet-console-secrets-');
  // Whatever the machine running the tests has set, these runs see no configured secret.
  const unset = { FLEET_CONSOLE_TOKEN: '', FLEET_CONSOLE_USERS: '', FLEET_SERVICE_TOKEN: '' };
  const consoleArgs = (...more: string[]) => [
    'console',
    '--port',
    '0',
    '--store',
    join(dir, 'fleet.db'),
    '--mqtt-url',
    'mqtt://127.0.0.1:1',
    ...more,
  ];

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to listen beyond loopback with the development console token, naming the variables to set', async () => {
    for (const args of [consoleArgs('--host', '0.0.0.0'), consoleArgs('--host', '0.0.0.0', '--console-token', DEV_CONSOLE_TOKEN)]) {
      const p = runFleet(args, unset);
      const code = await exitWithin(p, 20_000);
      const stderr = p.stderr.join('\n');
      assert.equal(code, 2, `${args.join(' ')}: ${stderr} ${p.lines.join('\n')}`);
      assert.match(stderr, /consoleToken: .*0\.0\.0\.0.*set FLEET_CONSOLE_TOKEN or FLEET_CONSOLE_USERS/);
      assert.ok(!p.lines.some((l) => l.startsWith('fleet console:')), 'it never listened');
    }
  });

  it('refuses to send the development service token to a gateway beyond loopback, naming FLEET_SERVICE_TOKEN', async () => {
    const p = runFleet(['console', '--port', '0', '--store', join(dir, 'fleet.db'), '--mqtt-url', 'mqtt://192.0.2.7:1883'], {
      ...unset,
      FLEET_CONSOLE_TOKEN: 'a-configured-console-token',
    });
    assert.equal(await exitWithin(p, 20_000), 2, p.stderr.join('\n'));
    assert.match(p.stderr.join('\n'), /serviceToken: .*192\.0\.2\.7.*set FLEET_SERVICE_TOKEN/);
  });

  it('starts beyond loopback with a configured token, and on loopback with the development one', async () => {
    for (const [args, env] of [
      [consoleArgs('--host', '0.0.0.0'), { ...unset, FLEET_CONSOLE_TOKEN: 'a-configured-console-token' }],
      [consoleArgs('--host', '127.0.0.1'), unset],
    ] as const) {
      const p = runFleet([...args], env);
      try {
        await waitFor(
          `${args.join(' ')} listening`,
          () => p.lines.some((l) => l.startsWith('fleet console: http://')) || p.child.exitCode !== null,
          20_000,
        );
        assert.equal(p.child.exitCode, null, p.stderr.join('\n'));
      } finally {
        await kill(p);
      }
    }
  });
});

/** One request on its own connection from a chosen loopback address, as a client elsewhere would make it. */
function requestFrom(
  localAddress: string,
  port: number,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> =
      text === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) };
    const req = httpRequest({ host: '127.0.0.1', port, localAddress, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: raw && res.headers['content-type']?.includes('json') ? JSON.parse(raw) : raw,
        });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** Raw bytes on a socket; resolves with whatever the server wrote before it closed, and how long that took. */
function rawExchange(
  port: number,
  bytes: string,
  opts: { giveUpMs: number; abortAfterMs?: number },
): Promise<{ answer: string; ms: number; closed: boolean }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connectTcp(port, '127.0.0.1');
    let answer = '';
    const finish = (closed: boolean) => {
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ answer, ms: Date.now() - started, closed });
    };
    const giveUp = setTimeout(() => finish(false), opts.giveUpMs);
    socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => finish(true));
    socket.write(bytes);
    if (opts.abortAfterMs !== undefined) setTimeout(() => socket.destroy(), opts.abortAfterMs);
  });
}

describe('console against careless and hostile clients', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-console-hostile-'));
  const logFile = join(dir, 'console.log');
  let server: ConsoleServer;
  let url: string;
  let port: number;

  const logLines = () =>
    readFileSync(logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });
  const metrics = async () => (await api(url, '/metrics')).body as string;

  beforeAll(async () => {
    server = new ConsoleServer(
      {
        host: '127.0.0.1',
        port: 0,
        store: join(dir, 'fleet.db'),
        mqttUrl: 'mqtt://127.0.0.1:1',
        serviceToken: SERVICE_TOKEN,
        consoleToken: WRITE_TOKEN,
        consoleUsers: [`alice:${await hashPassword('alice-password')}`, `carol:${await hashPassword('carol-password')}`],
      },
      createLogger('console', { file: logFile }),
    );
    await server.start();
    url = server.url;
    port = server.port;
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers prototype names in a path with 404, signed in or not', async () => {
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'];
    const paths = names.flatMap((n) => [`/vendor/${n}/leaflet.js`, `/vendor/leaflet/x.${n}`, `/app/x.${n}`, `/app/${n}`, `/${n}`]);
    for (const path of paths) {
      for (const headers of [{}, { authorization: `Bearer ${WRITE_TOKEN}` }] as Record<string, string>[]) {
        const res = await api(url, path, { headers });
        assert.equal(res.status, 404, `${path}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.error, /^no (such|vendored) /, path);
      }
    }
    // Vehicle ids may be such names too: they stay keys of their own.
    const store = new SqliteStore(join(dir, 'fleet.db'));
    await storeReadings(
      store,
      ['__proto__', 'constructor'].map((v) => reading(v, 1, 'gps', 40, Date.now() - 1000)),
      Date.now(),
    );
    await store.close();
    const tracks = await api(url, '/api/tracks', { headers: { authorization: `Bearer ${WRITE_TOKEN}` } });
    assert.deepEqual(Object.keys(tracks.body).sort(), ['__proto__', 'constructor']);
  });

  it('answers HEAD wherever GET answers, with the same headers and no body', async () => {
    const bearer = { authorization: `Bearer ${WRITE_TOKEN}` };
    for (const path of ['/', '/app/main.js', '/vendor/leaflet/leaflet.js', '/api/config', '/healthz', '/api/vehicles', '/api/stats']) {
      const [get, head] = [
        await fetch(`${url}${path}`, { headers: bearer }),
        await fetch(`${url}${path}`, { method: 'HEAD', headers: bearer }),
      ];
      await get.arrayBuffer();
      assert.equal(head.status, get.status, path);
      assert.equal(head.status, 200, path);
      assert.equal(head.headers.get('content-type'), get.headers.get('content-type'), path);
      assert.equal(await head.text(), '', path);
    }
    const events = await fetch(`${url}/api/events`, { method: 'HEAD', headers: bearer });
    assert.equal(events.status, 200);
    assert.match(events.headers.get('content-type') ?? '', /text\/event-stream/);
    assert.equal(await events.text(), '', 'a HEAD of the event stream ends at once');
    assert.equal((await fetch(`${url}/api/vehicles`, { method: 'HEAD' })).status, 401, 'reads still need a sign-in');
    const session = await fetch(`${url}/api/session`, { method: 'HEAD' });
    assert.equal(session.status, 405);
    assert.equal(session.headers.get('allow'), 'POST, DELETE');
    assert.equal((await fetch(`${url}/api/vehicles`, { method: 'DELETE' })).headers.get('allow'), 'GET, HEAD');
  });

  it('throttles failed sign-ins from one address with 429 and Retry-After, and counts them', async () => {
    const statuses: number[] = [];
    let throttled: Awaited<ReturnType<typeof requestFrom>> | undefined;
    for (let i = 0; i < 40; i++) {
      const res = await requestFrom('127.0.0.2', port, 'POST', '/api/session', { user: `guess-${i}`, password: `wrong-${i}` });
      statuses.push(res.status);
      if (res.status === 429) throttled ??= res;
    }
    assert.ok(throttled, `no 429 among ${statuses.join(' ')}`);
    assert.ok(statuses.filter((s) => s === 401).length <= 10, `refused before the throttle: ${statuses.join(' ')}`);
    assert.deepEqual(new Set(statuses.slice(statuses.indexOf(429))), new Set([429]), 'once throttled, every attempt is');
    assert.match(String(throttled.headers['retry-after']), /^[1-9]\d*$/);
    assert.match(throttled.body.error, /^sign-in: too many failed attempts from this address; try again in \d+ s$/);
    assert.equal(
      (await requestFrom('127.0.0.2', port, 'POST', '/api/session', { user: 'alice', password: 'alice-password' })).status,
      429,
      'even the right password waits',
    );
    assert.equal(
      (await requestFrom('127.0.0.3', port, 'POST', '/api/session', { user: 'alice', password: 'alice-password' })).status,
      200,
      'other addresses are not held up',
    );
    assert.match(await metrics(), /fleet_console_sign_ins_total\{result="throttled"[^}]*\} [1-9]/);
    await waitFor('the throttle logged', () => logLines().some((l) => l.msg === 'sign-in throttled' && l.remote === '127.0.0.2'));
  });

  it('throttles failed sign-ins for one user name however many addresses they come from', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      statuses.push(
        (await requestFrom(`127.0.1.${i + 1}`, port, 'POST', '/api/session', { user: 'carol', password: `guess-${i}` })).status,
      );
    }
    const first429 = statuses.indexOf(429);
    assert.ok(first429 > 0 && first429 <= 10, `statuses: ${statuses.join(' ')}`);
    const locked = await requestFrom('127.0.2.1', port, 'POST', '/api/session', { user: 'carol', password: 'carol-password' });
    assert.equal(locked.status, 429);
    assert.match(locked.body.error, /^sign-in: too many failed attempts for this user; try again in \d+ s$/);
    assert.equal(
      (await requestFrom('127.0.2.1', port, 'POST', '/api/session', { user: 'alice', password: 'alice-password' })).status,
      200,
      'other users are not held up',
    );
  });

  it('answers a request whose headers or body never finish with 408 within seconds', async () => {
    const slowHeaders = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: console\r\n', { giveUpMs: 20_000 });
    assert.match(slowHeaders.answer, /^HTTP\/1\.1 408 /, `after ${slowHeaders.ms} ms: ${slowHeaders.answer}`);
    assert.ok(slowHeaders.closed);
    const slowBody = await rawExchange(
      port,
      'POST /api/session HTTP/1.1\r\nHost: console\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user":',
      { giveUpMs: 20_000 },
    );
    assert.match(slowBody.answer, /^HTTP\/1\.1 408 /, `after ${slowBody.ms} ms: ${slowBody.answer}`);
    assert.match(slowBody.answer, /"error":"body: not received within \d+ s"/);
    assert.ok(slowBody.closed);
    assert.match(await metrics(), /fleet_console_http_requests_total\{route="sign-in",status="408"[^}]*\} 1\n/);
  });

  it('answers a request followed by bytes it cannot carry before ending the connection', async () => {
    // A DELETE has no body without a length: the rest reaches the parser while the store is asked.
    const { answer, closed } = await rawExchange(
      port,
      'DELETE /api/session HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n{"user":"x"}',
      { giveUpMs: 5000 },
    );
    assert.match(answer, /^HTTP\/1\.1 403 [\s\S]*"error":"origin: /);
    assert.ok(closed);
  });

  it('logs a client that goes away mid-request as an abort, not an error', async () => {
    await rawExchange(
      port,
      'POST /api/session HTTP/1.1\r\nHost: console\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user":',
      { giveUpMs: 5000, abortAfterMs: 100 },
    );
    await waitFor('the abort logged', () => logLines().find((l) => l.msg === 'request aborted by the client'));
    const aborted = logLines().find((l) => l.msg === 'request aborted by the client')!;
    assert.ok(aborted.level <= 30, `logged at level ${aborted.level}`);
    assert.equal(aborted.route, 'sign-in');
    assert.deepEqual(
      logLines()
        .filter((l) => l.level >= 50)
        .map((l) => l.msg),
      [],
      'no errors logged',
    );
    assert.match(await metrics(), /fleet_console_requests_aborted_total\{[^}]*\} 1\n/);
  });

  it('refuses connections beyond its cap, and serves again once they close', async () => {
    const capped = new ConsoleServer(
      {
        host: '127.0.0.1',
        port: 0,
        store: join(dir, 'fleet.db'),
        mqttUrl: 'mqtt://127.0.0.1:1',
        serviceToken: SERVICE_TOKEN,
        consoleToken: WRITE_TOKEN,
        maxConnections: 4,
      },
      createLogger('console', { level: 'silent' }),
    );
    await capped.start();
    const idle: NetSocket[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const s = connectTcp(capped.port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        idle.push(s);
      }
      const refused = await rawExchange(capped.port, 'GET /healthz HTTP/1.1\r\nHost: console\r\n\r\n', { giveUpMs: 5000 });
      assert.deepEqual(
        { answer: refused.answer, closed: refused.closed },
        { answer: '', closed: true },
        'the fifth connection is closed unanswered',
      );
      for (const s of idle) s.destroy();
      const served = await waitFor('a connection accepted again', async () => {
        const res = await rawExchange(capped.port, 'GET /healthz HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n', {
          giveUpMs: 5000,
        });
        return res.answer.startsWith('HTTP/1.1 200') && res;
      });
      assert.ok(served);
      const text = await (await fetch(`${capped.url}/metrics`)).text();
      assert.match(text, /fleet_console_connections_refused_total\{reason="too_many_connections"[^}]*\} [1-9]/);
    } finally {
      for (const s of idle) s.destroy();
      await capped.stop();
    }
  });
});
