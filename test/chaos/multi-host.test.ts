import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { sleep, tempDir, waitFor, within } from '../support/harness.js';
import { Network, NODE, SUBNET } from '../support/hosts.js';
import { KAFKA_READY, startKafkaCluster, type KafkaCluster } from '../support/kafka-broker.js';
import { FLEET_BIN, ROOT } from '../support/paths.js';

/**
 * The fleet on several hosts (network namespaces on one bridge, test/support/hosts.ts), each
 * service the `fleet` command as it is deployed (docs/DEPLOY.md), 200 trucks with their own
 * secrets given both gateways' addresses: a few real agents (their cabs and buffers are
 * looked at) and the rest simulated by one `fleet sim`. Over two and a half minutes of
 * traffic one gateway host crashes and comes back, PostgreSQL's host crashes and comes back,
 * a detector host loses its link (no process is told; its partitions go to the other
 * detector, and come back to it when its link does) and gets it back, and one of the three
 * Kafka brokers crashes and comes back. Meanwhile the crashed gateway's trucks carry on
 * through the other one, and the pipeline through the other two brokers once Kafka has
 * moved the partitions. Afterwards: every reading produced is stored exactly once in
 * PostgreSQL, each overheating truck raised one alert, the webhook got each alert once, each
 * live alert reached its truck's cab once (acknowledged in the ledger, shown once), no
 * historical one did, and the console lists every vehicle to another host.
 *
 * The topology is data (HOSTS, AGENTS, SIMULATED, FAULTS). What the parts decide:
 * - The gateways are one cluster through Redis, so the one dispatcher, given both gateways
 *   like the trucks and the console, reaches a cab on either gateway from whichever it is
 *   on (and moves to the other while its own is down).
 * - The operational store is PostgreSQL on a host of its own: two detector hosts share the
 *   work as one consumer group, and the console, on a host of its own with the dispatcher
 *   (whose delivery ledger is in the same database), reads what they store.
 * - Three Kafka brokers, each topic with three copies and min ISR 2: a broker's crash stalls
 *   writes only until its partitions have new leaders.
 */
const KAFKA_HOSTS = ['kafka-1', 'kafka-2', 'kafka-3'] as const;
const DETECTORS = ['detector-1', 'detector-2'] as const;
const HOSTS = [...KAFKA_HOSTS, 'redis', 'postgres', 'gw-a', 'gw-b', ...DETECTORS, 'console', 'trucks'] as const;
type Host = (typeof HOSTS)[number];
const GATEWAYS = ['gw-a', 'gw-b'] as const;
type GatewayHost = (typeof GATEWAYS)[number];

/**
 * Real agents, each its own process. A truck starts on the gateway its id hashes to (noted
 * here); the overheating ones raise one alert each, at a moment chosen against the faults.
 */
const AGENTS: { vehicle: string; overheatAtS?: number }[] = [
  { vehicle: 'trk-1', overheatAtS: 10 }, // gw-a
  { vehicle: 'trk-2', overheatAtS: 10 }, // gw-b
  { vehicle: 'trk-3', overheatAtS: 42 }, // gw-a, down by then: the truck and the dispatcher are on gw-b
  { vehicle: 'trk-4', overheatAtS: 78 }, // while detector-1 is cut off
  { vehicle: 'trk-5' },
];
/** The rest of the 200 trucks, in one `fleet sim` process: `sim-001` on. */
const SIMULATED = { count: 195, prefix: 'sim-' };
const SIM_VEHICLES = Array.from({ length: SIMULATED.count }, (_, i) => `${SIMULATED.prefix}${String(i + 1).padStart(3, '0')}`);
const VEHICLES = [...AGENTS.map((a) => a.vehicle), ...SIM_VEHICLES];
const OVERHEATING = AGENTS.filter((t) => t.overheatAtS !== undefined).map((t) => t.vehicle);

/**
 * crash: every process of the host SIGKILLed, what ran there started again after `forS`;
 * before that, every truck's readings from `carriesOnAfterS` after the crash on must be in the
 * store: the fleet went on without the host. partition: its link down for `forS`.
 */
const FAULTS: { atS: number; kind: 'crash' | 'partition'; host: Host; forS: number; carriesOnAfterS?: number }[] = [
  { atS: 35, kind: 'crash', host: 'gw-a', forS: 15, carriesOnAfterS: 5 },
  // The detectors, the dispatcher and the console wait for it; the trucks' readings wait in Kafka.
  { atS: 55, kind: 'crash', host: 'postgres', forS: 8 },
  { atS: 70, kind: 'partition', host: 'detector-1', forS: 20 },
  // Kafka moves the dead broker's partitions once its session times out (BENCHMARKS.md: PUBACKs stall 11 to 14 s),
  // and the detectors rejoin their group; 40 s leaves room for both on two shared cores.
  { atS: 100, kind: 'crash', host: 'kafka-1', forS: 40, carriesOnAfterS: 18 },
];
/** Seconds of traffic, from the trucks' start to their stop. */
const TRAFFIC_S = 150;

const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};
const PORTS = {
  mqtt: 1883,
  gatewayOps: 9102,
  detectorOps: 9103,
  dispatcherOps: 9104,
  console: 8080,
  webhook: 8099,
  redis: 6379,
  postgres: 5432,
};
const POSTGRES_SH = join(ROOT, 'scripts', 'services', 'postgres.sh');
const SERVICE_TOKEN = 'multi-host-service-token';
const CONSOLE_TOKEN = 'multi-host-console-token';
const execFileP = promisify(execFile);
const WEBHOOK_RECORDER = join(ROOT, 'dist', 'test', 'support', 'webhook-recorder.js');

describe('the fleet on several hosts through a gateway crash, a PostgreSQL crash, a detector partition and a Kafka broker crash', () => {
  let net: Network;
  let kafka: KafkaCluster | undefined;
  /** PostgreSQL's files; its own temp dir, since it runs as nobody, who may not enter net.dir. */
  const pgDir = tempDir('fleet-pg-');
  /** The moment the trucks started: the faults' and the overheats' clock. */
  let trucksStarted = 0;
  const dataDir = (host: Host, part: string) => join(net.dir, host, part);
  const kafkaBrokers = () => kafka!.brokers.join(',');
  /** Each topic is created with three copies, a write acknowledged once two have it: one broker may be down. */
  const replication = ['--kafka-replication-factor', '3', '--kafka-min-insync-replicas', '2'];
  const gatewayUrl = (gw: GatewayHost) => `mqtt://${net.address(gw)}:${PORTS.mqtt}`;
  /** What every truck is given: both gateways, in the same order. */
  const gatewayList = () => GATEWAYS.map(gatewayUrl).join(',');
  const rulesFile = () => join(net.dir, 'rules.json');
  const bufferOf = (vehicle: string) =>
    join(dataDir('trucks', vehicle.startsWith(SIMULATED.prefix) ? 'sim' : 'agents'), `${vehicle}.buffer.db`);
  const storeUrl = () => `postgres://fleet@${net.address('postgres')}:${PORTS.postgres}/fleet`;
  /** One statement on the fleet's database, through PostgreSQL's socket file (this process has no route into the network). */
  const sql = async <T>(text: string, params: unknown[] = [], database = 'fleet'): Promise<T[]> => {
    const client = new pg.Client({ host: pgDir, port: PORTS.postgres, user: 'fleet', database });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  };
  /** Per vehicle, what the store holds of its readings. */
  const storedPerVehicle = async (): Promise<Map<string, StoredReadings>> => {
    const rows = await sql<Record<keyof StoredReadings | 'vehicle', string>>(
      `SELECT vehicle, count(*) AS count, count(DISTINCT seq) AS distinct, min(seq) AS "minSeq", max(seq) AS "maxSeq", max(ts) AS "lastTs"
       FROM readings GROUP BY vehicle`,
    );
    // bigint and count come back as strings.
    return new Map(
      rows.map((r) => [
        r.vehicle,
        {
          count: Number(r.count),
          distinct: Number(r.distinct),
          minSeq: Number(r.minSeq),
          maxSeq: Number(r.maxSeq),
          lastTs: Number(r.lastTs),
        },
      ]),
    );
  };
  // Services log at info to their files in net.dir; FLEET_SINK_RETRY_MAX_MS: a gateway finds the restarted broker within a second.
  const serviceEnv = { FLEET_SERVICE_TOKEN: SERVICE_TOKEN, FLEET_SINK_RETRY_MAX_MS: '1000' };

  const startGateway = (gw: GatewayHost) =>
    net.fleet(
      gw,
      'gateway',
      [
        'gateway',
        ...['--host', net.address(gw), '--port', String(PORTS.mqtt), '--auth', 'password'],
        ...['--data-dir', dataDir(gw, 'gateway'), '--sinks', 'kafka', '--kafka-brokers', kafkaBrokers(), '--kafka-partitions', '3'],
        ...replication,
        ...['--cluster-redis-url', `redis://${net.address('redis')}:${PORTS.redis}`],
        ...['--ops-host', net.address(gw), '--ops-port', String(PORTS.gatewayOps)],
      ],
      serviceEnv,
    );

  const startPostgres = async () => {
    await execFileP('bash', [POSTGRES_SH, 'init', pgDir], { timeout: 120_000 });
    // The services connect from their hosts, over addresses only these namespaces use.
    appendFileSync(join(pgDir, 'data', 'pg_hba.conf'), `host all fleet ${SUBNET}.0/24 trust\n`);
    net.start('postgres', 'postgres', ['bash', POSTGRES_SH, 'run', pgDir, String(PORTS.postgres), net.address('postgres')]);
    await waitFor(
      'PostgreSQL',
      () =>
        sql('SELECT 1', [], 'postgres').then(
          () => true,
          () => false,
        ),
      60_000,
      200,
    );
    await sql('CREATE DATABASE fleet', [], 'postgres');
  };

  const startCloud = async () => {
    for (const host of DETECTORS) {
      const detector = net.fleet(
        host,
        'detector',
        [
          'detector',
          ...[
            '--source',
            'kafka',
            '--kafka-brokers',
            kafkaBrokers(),
            '--consumer-group',
            'detectors',
            '--dispatch',
            'kafka',
            ...replication,
          ],
          ...['--store', storeUrl(), '--data-dir', dataDir(host, 'cloud'), '--rules-file', rulesFile()],
          ...['--ops-host', net.address(host), '--ops-port', String(PORTS.detectorOps)],
        ],
        serviceEnv,
      );
      // One at a time: the first creates the store's tables. Its group's coordinator needs the
      // offsets topic on three freshly started brokers, which can take a while on two cores.
      await waitFor(`the detector on ${host}`, () => healthy('console', healthUrl(host)), 120_000, 500).catch((err: Error) => {
        throw new Error(`${err.message}; its last lines:\n${[...detector.lines, ...detector.stderr].slice(-20).join('\n')}`);
      });
    }
    net.fleet(
      'console',
      'console',
      [
        'console',
        ...['--host', net.address('console'), '--port', String(PORTS.console)],
        ...['--store', storeUrl(), '--mqtt-url', gatewayList(), '--rules-file', rulesFile()],
      ],
      { ...serviceEnv, FLEET_CONSOLE_TOKEN: CONSOLE_TOKEN },
    );
    net.node('console', 'webhook', WEBHOOK_RECORDER, [net.address('console'), String(PORTS.webhook)]);
    // One dispatcher for the fleet: the gateway cluster carries each cab alert to the gateway its truck is on.
    net.fleet(
      'console',
      'dispatcher',
      [
        'dispatcher',
        ...['--kafka-brokers', kafkaBrokers(), '--consumer-group', 'dispatch', '--store', storeUrl()],
        ...['--data-dir', dataDir('console', 'dispatcher'), ...replication],
        ...['--mqtt-url', gatewayList(), '--ops-host', net.address('console'), '--ops-port', String(PORTS.dispatcherOps)],
        ...['--webhook-url', `http://${net.address('console')}:${PORTS.webhook}/alerts`],
      ],
      serviceEnv,
    );
  };

  /**
   * Every truck's secret, made on gw-a's host as an operator would (`fleet device add`, the
   * whole fleet at once); the credentials file, hashes only, is then copied to the other
   * gateway, since a truck may connect to either.
   */
  const enrol = async (): Promise<Map<string, string>> => {
    const credentials = join(dataDir('gw-a', 'gateway'), 'devices.json');
    const r = await net.exec('gw-a', [NODE, FLEET_BIN, 'device', 'add', ...VEHICLES, '--credentials-file', credentials]);
    assert.equal(r.code, 0, r.stderr);
    const secrets = r.stdout.trim().split('\n');
    assert.equal(secrets.length, VEHICLES.length);
    for (const gw of GATEWAYS.slice(1)) {
      mkdirSync(dataDir(gw, 'gateway'), { recursive: true });
      copyFileSync(credentials, join(dataDir(gw, 'gateway'), 'devices.json'));
    }
    return new Map(VEHICLES.map((v, i) => [v, secrets[i]!]));
  };

  const startTrucks = (secrets: Map<string, string>) => {
    const simSecrets = join(net.dir, 'trucks', 'sim-secrets.json');
    writeFileSync(simSecrets, JSON.stringify(Object.fromEntries(SIM_VEHICLES.map((v) => [v, secrets.get(v)]))), { mode: 0o600 });
    net.fleet(
      'trucks',
      'sim',
      [
        'sim',
        ...['--trucks', String(SIMULATED.count), '--prefix', SIMULATED.prefix, '--secrets-file', simSecrets],
        ...['--mqtt-url', gatewayList(), '--data-dir', dataDir('trucks', 'sim'), '--ops-port', '-1'],
        // Each sensor once a second, one publish a second: 195 trucks within what two shared cores carry beside the rest.
        ...['--sim-hz', '1', '--linger-ms', '1000', '--drain-on-stop-ms', '60000'],
      ],
      { FLEET_LOG_LEVEL: 'warn' },
    );
    for (const [i, t] of AGENTS.entries()) {
      net.fleet(
        'trucks',
        t.vehicle,
        [
          'agent',
          ...['--vehicle', t.vehicle, '--mqtt-url', gatewayList(), '--data-dir', dataDir('trucks', 'agents')],
          ...['--sim-seed', String(1000 + i), '--sim-hz', '5', '--ops-port', '-1'],
          ...['--reconnect-base-ms', '200', '--reconnect-max-ms', '2000'],
          // The cab hears only what the cloud sends it, so its delivery is what is measured; a stop drains the whole buffer.
          ...['--edge-rules', 'false', '--drain-on-stop-ms', '60000'],
          ...(t.overheatAtS === undefined ? [] : ['--overheat-at', String(t.overheatAtS)]),
        ],
        { FLEET_PASSWORD: secrets.get(t.vehicle), FLEET_LOG_LEVEL: 'warn' },
      );
    }
    trucksStarted = Date.now();
  };

  beforeAll(async () => {
    net = await Network.create([...HOSTS]);
    for (const host of HOSTS) mkdirSync(join(net.dir, host), { recursive: true });
    writeFileSync(rulesFile(), JSON.stringify(RULES));
    // Nothing kept: the cluster link needs Redis only for what crosses now (gateway/README.md). No password on
    // the test's own network, so protected mode (loopback only without one) is off.
    net.start('redis', 'redis', [
      'redis-server',
      ...['--bind', net.address('redis'), '--port', String(PORTS.redis), '--protected-mode', 'no'],
      ...['--dir', dataDir('redis', ''), '--save', '', '--appendonly', 'no'],
    ]);
    kafka = await startKafkaCluster(KAFKA_HOSTS.length, {
      partitionsDefault: 3,
      hosts: KAFKA_HOSTS.map((host) => ({
        address: net.address(host),
        spawn: net.spawner(host),
        ready: async (bootstrap, brokers) =>
          (await net.exec('gw-a', [NODE, KAFKA_READY, bootstrap, String(brokers)], { timeoutMs: 15_000 })).code === 0,
      })),
    });
    await startPostgres();
    const secrets = await enrol();
    for (const gw of GATEWAYS) startGateway(gw);
    await startCloud();
    for (const gw of GATEWAYS) {
      await waitFor(`the gateway on ${gw}, linked to the cluster`, () => clusterLinked(gw), 60_000, 500);
    }
    await waitFor('the console', () => healthy('trucks', consoleUrl('/healthz')), 60_000, 500);
    startTrucks(secrets);
  });

  afterAll(async () => {
    for (const node of kafka?.nodes ?? []) node.kill();
    await net?.destroy();
    rmSync(pgDir, { recursive: true, force: true });
  });

  /** The ops /healthz of each host's service (on the console host, the dispatcher's: the console answers on its own port). */
  const healthUrl = (host: Host) => {
    const port = {
      'gw-a': PORTS.gatewayOps,
      'gw-b': PORTS.gatewayOps,
      'detector-1': PORTS.detectorOps,
      'detector-2': PORTS.detectorOps,
      console: PORTS.dispatcherOps,
    }[host as string];
    if (port === undefined) throw new Error(`no health endpoint on ${host}`);
    return `http://${net.address(host)}:${port}/healthz`;
  };

  const consoleUrl = (path: string) => `http://${net.address('console')}:${PORTS.console}${path}`;

  const healthy = async (from: Host, url: string) => {
    try {
      return (await net.fetchJson(from, url)).status === 200;
    } catch {
      return false;
    }
  };

  const clusterLinked = async (gw: GatewayHost) => {
    try {
      const r = await net.fetchJson<{ cluster?: { redis: string } }>('trucks', healthUrl(gw));
      return r.status === 200 && r.body.cluster?.redis === 'connected';
    } catch {
      return false;
    }
  };

  it('stores every reading once, raises and delivers each alert once, and lists every vehicle', async () => {
    const started = trucksStarted;
    const at = (s: number) => sleep(Math.max(0, started + s * 1000 - Date.now()));
    await waitFor(
      "every truck's readings in the store",
      async () => (await storedPerVehicle()).size === VEHICLES.length,
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
        const crashedAt = Date.now();
        await net.killHost(f.host);
        if (f.carriesOnAfterS !== undefined) {
          // Before the host is back: every truck's readings of the outage reach the store without it.
          const since = crashedAt + f.carriesOnAfterS * 1000;
          const stalled = async () => {
            const stored = await storedPerVehicle();
            return VEHICLES.filter((v) => (stored.get(v)?.lastTs ?? 0) < since);
          };
          const deadline = started + (f.atS + f.forS) * 1000;
          while ((await stalled()).length > 0 && Date.now() < deadline) await sleep(500);
          assert.deepEqual(
            await stalled(),
            [],
            `every truck's readings from ${f.carriesOnAfterS} s into the outage stored while ${f.host} was down`,
          );
          process.stderr.write(
            `#   every truck carried on without ${f.host}, ${Math.round((Date.now() - crashedAt) / 1000)} s after its crash\n`,
          );
        }
        await at(f.atS + f.forS);
        const kafkaNode = (KAFKA_HOSTS as readonly string[]).indexOf(f.host) + 1;
        if (kafkaNode > 0) {
          const node = kafka!.node(kafkaNode);
          node.kill();
          await node.restart();
        } else {
          for (const name of servicesOn(f.host)) net.startAgain(f.host, name);
        }
      }
    }
    await at(TRAFFIC_S);

    // The trucks stop sampling and drain their buffers to the gateways.
    const trucks = [net.process('trucks', 'sim'), ...AGENTS.map((t) => net.process('trucks', t.vehicle))];
    for (const p of trucks) p.child.kill('SIGTERM');
    for (const p of trucks) await within(`${p.name} to drain and exit`, p.exited, 90_000);
    const produced = new Map(VEHICLES.map((v) => [v, readBuffer(bufferOf(v))]));
    for (const [vehicle, b] of produced) assert.equal(b.buffered, 0, `${vehicle}: its whole buffer acknowledged by a gateway`);
    const total = [...produced.values()].reduce((n, b) => n + b.produced, 0);

    await waitFor(
      `all ${total} readings stored`,
      async () => {
        const stored = await storedPerVehicle();
        return VEHICLES.every((v) => (stored.get(v)?.count ?? 0) >= produced.get(v)!.produced);
      },
      120_000,
      1000,
    );
    const stored = await storedPerVehicle();
    // count = distinct seqs = the highest = what the truck produced, from 1: each of its seqs exactly once.
    const wrong = VEHICLES.filter((v) => {
      const s = stored.get(v)!;
      const n = produced.get(v)!.produced;
      return !(s.count === n && s.distinct === n && s.minSeq === 1 && s.maxSeq === n);
    });
    assert.deepEqual(wrong, [], 'every seq of every truck stored exactly once');

    type Row = { id: string; vehicle: string; rule: string; live: boolean };
    const alerts = () => sql<Row>('SELECT id, vehicle, rule, live FROM alerts ORDER BY vehicle');
    await waitFor('an alert for each overheating truck', async () => (await alerts()).length >= OVERHEATING.length, 60_000, 1000);
    const raised = await alerts();
    assert.deepEqual(
      raised.map((a) => [a.vehicle, a.rule]),
      OVERHEATING.map((v) => [v, 'engine-overheat']),
      'one alert per overheating truck, none for the others',
    );
    for (const v of ['trk-1', 'trk-2', 'trk-3'])
      assert.equal(raised.find((a) => a.vehicle === v)?.live, true, `${v}'s alert, raised while the detectors were reachable, is live`);

    const webhook = () => net.process('console', 'webhook').lines;
    await waitFor('each alert at the webhook', () => raised.every((a) => webhook().includes(a.id)), 60_000, 1000);
    const live = raised.filter((a) => a.live);
    const acknowledgedByCab = async () =>
      (
        await sql<{ alert_id: string }>(
          "SELECT alert_id FROM deliveries WHERE channel = 'driver' AND state = 'acknowledged' AND alert_id = ANY($1)",
          [live.map((a) => a.id)],
        )
      ).length;
    await waitFor('each live alert acknowledged by its cab', async () => (await acknowledgedByCab()) === live.length, 60_000, 1000);
    await sleep(3000); // a late duplicate would arrive now

    assert.deepEqual(
      raised.map((a) => webhook().filter((k) => k === a.id).length),
      raised.map(() => 1),
      'the webhook got each alert once',
    );
    for (const t of AGENTS) {
      const mine = raised.filter((a) => a.vehicle === t.vehicle);
      assert.deepEqual(
        readBuffer(bufferOf(t.vehicle)).shown,
        mine
          .filter((a) => a.live)
          .map((a) => a.id)
          .sort(),
        `${t.vehicle}'s cab showed each of its live alerts once, and no historical one`,
      );
    }

    for (const host of ['gw-a', 'gw-b', ...DETECTORS, 'console'] as const) {
      await waitFor(`${host}'s service healthy again, asked from another host`, () => healthy('trucks', healthUrl(host)), 30_000, 500);
    }
    const vehicles = await net.fetchJson<{ id: string }[]>('trucks', consoleUrl('/api/vehicles'), {
      authorization: `Bearer ${CONSOLE_TOKEN}`,
    });
    assert.equal(vehicles.status, 200);
    assert.deepEqual(vehicles.body.map((v) => v.id).sort(), [...VEHICLES].sort(), 'the console lists every vehicle');
    process.stderr.write(
      `# ${total} readings from ${VEHICLES.length} trucks stored once; ${raised.length} alerts (${live.length} live) in ${Math.round((Date.now() - started) / 1000)} s\n`,
    );
  });
});

/** What ran on a host, in the order it is started again after a crash. */
function servicesOn(host: Host): string[] {
  if (host === 'gw-a' || host === 'gw-b') return ['gateway'];
  if (host === 'postgres') return ['postgres'];
  if (host === 'detector-1' || host === 'detector-2') return ['detector'];
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

interface StoredReadings {
  count: number;
  distinct: number;
  minSeq: number;
  maxSeq: number;
  /** The event time of the newest reading stored. */
  lastTs: number;
}
