import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sleep, waitFor, within } from '../support/harness.js';
import { Network, NODE } from '../support/hosts.js';
import { KAFKA_READY, startKafka, type KafkaBroker } from '../support/kafka-broker.js';
import { FLEET_BIN, ROOT } from '../support/paths.js';

/**
 * The fleet on several hosts (network namespaces on one bridge, test/support/hosts.ts), each
 * service the `fleet` command as it is deployed (docs/DEPLOY.md), the trucks real agents
 * with their own secrets. Over two and a half minutes of traffic one gateway host crashes
 * and comes back, the detector host loses its link (no process is told) and gets it back,
 * and the Kafka broker is SIGKILLed and restarted. Afterwards: every reading produced is
 * stored exactly once, each overheating truck raised one alert, the webhook got each alert
 * once, each live alert reached its truck's cab once (acknowledged in the ledger, shown
 * once), no historical one did, and the console lists every vehicle to another host.
 *
 * The topology is data (HOSTS, TRUCKS, FAULTS). What today's parts decide:
 * - The operational store is a SQLite file, which two hosts cannot share: one detector host
 *   holds it and runs the console beside it. With a PostgreSQL store a second detector host
 *   joins the consumer group and the console moves to a host of its own.
 * - Agents take one gateway URL and the gateways share no broker state, so trucks are split
 *   between the gateways and wait for theirs to come back; the cab channel reaches the trucks
 *   of the gateway it is connected to, so each gateway has a dispatcher of its own (its own
 *   consumer group and ledger), and one of them also tells the webhook.
 * - One Kafka broker (replication 1): its crash stops the pipeline until it is back.
 */
const HOSTS = ['kafka', 'gw-a', 'gw-b', 'detector', 'dispatch', 'trucks'] as const;
type Host = (typeof HOSTS)[number];
const GATEWAYS = ['gw-a', 'gw-b'] as const;
type GatewayHost = (typeof GATEWAYS)[number];

/** Four trucks per gateway; the overheating ones raise one alert each, at a moment chosen against the faults. */
const TRUCKS: { vehicle: string; gateway: GatewayHost; overheatAtS?: number }[] = [
  { vehicle: 'trk-a1', gateway: 'gw-a', overheatAtS: 10 },
  { vehicle: 'trk-a2', gateway: 'gw-a', overheatAtS: 42 }, // while gw-a is down: its readings wait in the agent
  { vehicle: 'trk-a3', gateway: 'gw-a' },
  { vehicle: 'trk-a4', gateway: 'gw-a' },
  { vehicle: 'trk-b1', gateway: 'gw-b', overheatAtS: 10 },
  { vehicle: 'trk-b2', gateway: 'gw-b', overheatAtS: 78 }, // while the detector host is cut off
  { vehicle: 'trk-b3', gateway: 'gw-b' },
  { vehicle: 'trk-b4', gateway: 'gw-b' },
];
const OVERHEATING = TRUCKS.filter((t) => t.overheatAtS !== undefined).map((t) => t.vehicle);

/** crash: every process of the host SIGKILLed, what ran there started again after `forS`. partition: its link down for `forS`. */
const FAULTS: { atS: number; kind: 'crash' | 'partition'; host: Host; forS: number }[] = [
  { atS: 35, kind: 'crash', host: 'gw-a', forS: 15 },
  { atS: 70, kind: 'partition', host: 'detector', forS: 20 },
  { atS: 110, kind: 'crash', host: 'kafka', forS: 5 },
];
/** Seconds of traffic, from the trucks' start to their stop. */
const TRAFFIC_S = 150;

const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};
const PORTS = { mqtt: 1883, gatewayOps: 9102, detectorOps: 9103, dispatcherOps: 9104, console: 8080, webhook: 8099 };
const SERVICE_TOKEN = 'multi-host-service-token';
const CONSOLE_TOKEN = 'multi-host-console-token';
const WEBHOOK_RECORDER = join(ROOT, 'dist', 'test', 'support', 'webhook-recorder.js');

describe('the fleet on several hosts through a gateway crash, a detector partition and a broker crash', () => {
  let net: Network;
  let kafka: KafkaBroker | undefined;
  /** The moment the agents started: the faults' and the overheats' clock. */
  let trucksStarted = 0;
  const dataDir = (host: Host, part: string) => join(net.dir, host, part);
  const gatewayUrl = (gw: GatewayHost) => `mqtt://${net.address(gw)}:${PORTS.mqtt}`;
  const rulesFile = () => join(net.dir, 'rules.json');
  const bufferOf = (vehicle: string) => join(dataDir('trucks', 'agents'), `${vehicle}.buffer.db`);
  const ledgerOf = (gw: GatewayHost) => join(dataDir('dispatch', `dispatcher-${gw}`), 'ledger.db');
  // Services log at info to their files in net.dir; FLEET_SINK_RETRY_MAX_MS: a gateway finds the restarted broker within a second.
  const serviceEnv = { FLEET_SERVICE_TOKEN: SERVICE_TOKEN, FLEET_SINK_RETRY_MAX_MS: '1000' };

  const startGateway = (gw: GatewayHost) =>
    net.fleet(
      gw,
      'gateway',
      [
        'gateway',
        ...['--host', net.address(gw), '--port', String(PORTS.mqtt), '--auth', 'password'],
        ...['--data-dir', dataDir(gw, 'gateway'), '--sinks', 'kafka', '--kafka-brokers', kafka!.bootstrap, '--kafka-partitions', '3'],
        ...['--ops-host', net.address(gw), '--ops-port', String(PORTS.gatewayOps)],
      ],
      serviceEnv,
    );

  const startCloud = async () => {
    net.fleet(
      'detector',
      'detector',
      [
        'detector',
        ...['--source', 'kafka', '--kafka-brokers', kafka!.bootstrap, '--consumer-group', 'detectors', '--dispatch', 'kafka'],
        ...['--data-dir', dataDir('detector', 'cloud'), '--rules-file', rulesFile()],
        ...['--ops-host', net.address('detector'), '--ops-port', String(PORTS.detectorOps)],
      ],
      serviceEnv,
    );
    // The console opens the store the detector creates: it starts once the detector is up.
    await waitFor('the detector', () => healthy('dispatch', healthUrl('detector')), 60_000, 500);
    net.fleet(
      'detector',
      'console',
      [
        'console',
        ...['--host', net.address('detector'), '--port', String(PORTS.console)],
        ...['--store', join(dataDir('detector', 'cloud'), 'fleet.db'), '--mqtt-url', gatewayUrl('gw-a'), '--rules-file', rulesFile()],
      ],
      { ...serviceEnv, FLEET_CONSOLE_TOKEN: CONSOLE_TOKEN },
    );
    net.node('dispatch', 'webhook', WEBHOOK_RECORDER, [net.address('dispatch'), String(PORTS.webhook)]);
    for (const [i, gw] of GATEWAYS.entries()) {
      net.fleet(
        'dispatch',
        `dispatcher-${gw}`,
        [
          'dispatcher',
          ...['--kafka-brokers', kafka!.bootstrap, '--consumer-group', `cab-${gw}`, '--data-dir', dataDir('dispatch', `dispatcher-${gw}`)],
          ...['--mqtt-url', gatewayUrl(gw), '--ops-host', net.address('dispatch'), '--ops-port', String(PORTS.dispatcherOps + i)],
          // The fleet team hears of each alert once: from one of the dispatchers.
          ...(i === 0 ? ['--webhook-url', `http://${net.address('dispatch')}:${PORTS.webhook}/alerts`] : []),
        ],
        serviceEnv,
      );
    }
  };

  /** Each truck's secret, made on its gateway's host as an operator would (`fleet device add`). */
  const enrol = async (vehicle: string, gw: GatewayHost): Promise<string> => {
    const r = await net.exec(gw, [NODE, FLEET_BIN, 'device', 'add', vehicle, '--data-dir', dataDir(gw, 'gateway')]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };

  const startTrucks = async () => {
    // One at a time: each `device add` rewrites the gateway's credentials file.
    const secrets: string[] = [];
    for (const t of TRUCKS) secrets.push(await enrol(t.vehicle, t.gateway));
    for (const [i, t] of TRUCKS.entries()) {
      net.fleet(
        'trucks',
        t.vehicle,
        [
          'agent',
          ...['--vehicle', t.vehicle, '--mqtt-url', gatewayUrl(t.gateway), '--data-dir', dataDir('trucks', 'agents')],
          ...['--sim-seed', String(i + 1), '--sim-hz', '5', '--ops-port', '-1', '--reconnect-base-ms', '200', '--reconnect-max-ms', '2000'],
          // The cab hears only what the cloud sends it, so its delivery is what is measured; a stop drains the whole buffer.
          ...['--edge-rules', 'false', '--drain-on-stop-ms', '60000'],
          ...(t.overheatAtS === undefined ? [] : ['--overheat-at', String(t.overheatAtS)]),
        ],
        { FLEET_PASSWORD: secrets[i], FLEET_LOG_LEVEL: 'warn' },
      );
    }
    trucksStarted = Date.now();
  };

  beforeAll(async () => {
    net = await Network.create([...HOSTS]);
    for (const host of HOSTS) mkdirSync(join(net.dir, host), { recursive: true });
    writeFileSync(rulesFile(), JSON.stringify(RULES));
    kafka = await startKafka({
      partitionsDefault: 3,
      host: {
        address: net.address('kafka'),
        spawn: net.spawner('kafka'),
        ready: async (bootstrap, brokers) =>
          (await net.exec('gw-a', [NODE, KAFKA_READY, bootstrap, String(brokers)], { timeoutMs: 15_000 })).code === 0,
      },
    });
    for (const gw of GATEWAYS) startGateway(gw);
    await startCloud();
    for (const gw of GATEWAYS) {
      await waitFor(`the gateway on ${gw}`, () => healthy('trucks', healthUrl(gw)), 60_000, 500);
    }
    await waitFor('the console', () => healthy('dispatch', consoleUrl('/healthz')), 60_000, 500);
    await startTrucks();
  });

  afterAll(async () => {
    kafka?.kill();
    await net?.destroy();
  });

  /** The /healthz of the service each host answers for (its first). */
  const healthUrl = (host: Host) => {
    const port = { 'gw-a': PORTS.gatewayOps, 'gw-b': PORTS.gatewayOps, detector: PORTS.detectorOps, dispatch: PORTS.dispatcherOps }[
      host as string
    ];
    if (port === undefined) throw new Error(`no health endpoint on ${host}`);
    return `http://${net.address(host)}:${port}/healthz`;
  };

  const consoleUrl = (path: string) => `http://${net.address('detector')}:${PORTS.console}${path}`;

  const healthy = async (from: Host, url: string) => {
    try {
      return (await net.fetchJson(from, url)).status === 200;
    } catch {
      return false;
    }
  };

  it('stores every reading once, raises and delivers each alert once, and lists every vehicle', async () => {
    const started = trucksStarted;
    const at = (s: number) => sleep(Math.max(0, started + s * 1000 - Date.now()));
    const storeFile = join(dataDir('detector', 'cloud'), 'fleet.db');
    await waitFor(
      "every truck's readings in the store",
      () => existsSync(storeFile) && TRUCKS.every((t) => readingsOf(storeFile, t.vehicle) > 0),
      Math.min(30_000, FAULTS[0]!.atS * 1000),
      500,
    );
    for (const f of FAULTS) {
      await at(f.atS);
      process.stderr.write(`# ${Math.round((Date.now() - started) / 1000)} s: ${f.kind} ${f.host} for ${f.forS} s\n`);
      if (f.kind === 'partition') {
        await net.partition(f.host);
        assert.equal(await healthy('trucks', healthUrl(f.host)), false, `${f.host} cut off from the other hosts`);
        await at(f.atS + f.forS);
        await net.heal(f.host);
      } else {
        await net.killHost(f.host);
        await at(f.atS + f.forS);
        if (f.host === 'kafka') {
          kafka!.kill();
          await kafka!.restart();
        } else {
          for (const name of servicesOn(f.host)) net.startAgain(f.host, name);
        }
      }
    }
    await at(TRAFFIC_S);

    // The trucks stop sampling and drain their buffers to the gateways.
    for (const t of TRUCKS) net.process('trucks', t.vehicle).child.kill('SIGTERM');
    for (const t of TRUCKS) await within(`${t.vehicle} to drain and exit`, net.process('trucks', t.vehicle).exited, 90_000);
    const produced = new Map(TRUCKS.map((t) => [t.vehicle, readBuffer(bufferOf(t.vehicle))]));
    for (const [vehicle, b] of produced) assert.equal(b.buffered, 0, `${vehicle}: its whole buffer acknowledged by its gateway`);
    const total = [...produced.values()].reduce((n, b) => n + b.produced, 0);

    const store = new Database(storeFile, { readonly: true });
    const ledgers = new Map(GATEWAYS.map((gw) => [gw, new Database(ledgerOf(gw), { readonly: true })]));
    try {
      const storedSeqs = (v: string) =>
        (store.prepare('SELECT seq FROM readings WHERE vehicle = ? ORDER BY seq').all(v) as { seq: number }[]).map((r) => r.seq);
      await waitFor(
        `all ${total} readings stored`,
        () => TRUCKS.every((t) => storedSeqs(t.vehicle).length >= produced.get(t.vehicle)!.produced),
        120_000,
        1000,
      );
      for (const t of TRUCKS) {
        const want = Array.from({ length: produced.get(t.vehicle)!.produced }, (_, i) => i + 1);
        assert.deepEqual(storedSeqs(t.vehicle), want, `${t.vehicle}: every seq stored exactly once`);
      }

      type Row = { id: string; vehicle: string; rule: string; live: number };
      const alerts = () => store.prepare('SELECT id, vehicle, rule, live FROM alerts ORDER BY vehicle').all() as Row[];
      await waitFor('an alert for each overheating truck', () => alerts().length >= OVERHEATING.length, 60_000, 1000);
      const raised = alerts();
      assert.deepEqual(
        raised.map((a) => [a.vehicle, a.rule]),
        OVERHEATING.map((v) => [v, 'engine-overheat']),
        'one alert per overheating truck, none for the others',
      );
      for (const v of ['trk-a1', 'trk-b1'])
        assert.equal(raised.find((a) => a.vehicle === v)?.live, 1, `${v}'s alert, raised before any fault, is live`);

      const webhook = () => net.process('dispatch', 'webhook').lines;
      await waitFor('each alert at the webhook', () => raised.every((a) => webhook().includes(a.id)), 60_000, 1000);
      const live = raised.filter((a) => a.live === 1);
      const gatewayOf = (v: string) => TRUCKS.find((t) => t.vehicle === v)!.gateway;
      const cabState = (a: Row) =>
        (
          ledgers.get(gatewayOf(a.vehicle))!.prepare("SELECT state FROM deliveries WHERE alert_id = ? AND channel = 'driver'").get(a.id) as
            { state: string } | undefined
        )?.state;
      await waitFor('each live alert acknowledged by its cab', () => live.every((a) => cabState(a) === 'acknowledged'), 60_000, 1000);
      await sleep(3000); // a late duplicate would arrive now

      assert.deepEqual(
        raised.map((a) => webhook().filter((k) => k === a.id).length),
        raised.map(() => 1),
        'the webhook got each alert once',
      );
      for (const t of TRUCKS) {
        const mine = raised.filter((a) => a.vehicle === t.vehicle);
        assert.deepEqual(
          readBuffer(bufferOf(t.vehicle)).shown,
          mine
            .filter((a) => a.live === 1)
            .map((a) => a.id)
            .sort(),
          `${t.vehicle}'s cab showed each of its live alerts once, and no historical one`,
        );
      }

      for (const host of ['gw-a', 'gw-b', 'detector', 'dispatch'] as const) {
        assert.ok(await healthy('trucks', healthUrl(host)), `${host}'s service healthy again, asked from another host`);
      }
      const vehicles = await net.fetchJson<{ id: string }[]>(
        'dispatch',
        `http://${net.address('detector')}:${PORTS.console}/api/vehicles`,
        {
          authorization: `Bearer ${CONSOLE_TOKEN}`,
        },
      );
      assert.equal(vehicles.status, 200);
      assert.deepEqual(vehicles.body.map((v) => v.id).sort(), TRUCKS.map((t) => t.vehicle).sort(), 'the console lists every vehicle');
      process.stderr.write(
        `# ${total} readings from ${TRUCKS.length} trucks stored once; ${raised.length} alerts (${live.length} live) in ${Math.round((Date.now() - started) / 1000)} s\n`,
      );
    } finally {
      store.close();
      for (const l of ledgers.values()) l.close();
    }
  });
});

/** What ran on a host, in the order it is started again after a crash. */
function servicesOn(host: Host): string[] {
  if (host === 'gw-a' || host === 'gw-b') return ['gateway'];
  if (host === 'detector') return ['detector', 'console'];
  throw new Error(`nothing to start again on ${host}`);
}

function readBuffer(path: string): { produced: number; buffered: number; shown: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      produced: Number((db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: number }).value) - 1,
      buffered: (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n,
      shown: (db.prepare('SELECT id FROM alerts_shown ORDER BY id').all() as { id: string }[]).map((r) => r.id),
    };
  } finally {
    db.close();
  }
}

function readingsOf(storePath: string, vehicle: string): number {
  const db = new Database(storePath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM readings WHERE vehicle = ?').get(vehicle) as { n: number }).n;
  } finally {
    db.close();
  }
}
