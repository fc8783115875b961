import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { Random } from '../../simulators/random.js';
import { slowWebhookReceiver, type WebhookReceiver } from '../support/alert-fixtures.js';
import { freePort, kill, portOpen, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';
import { reportReliability, SOAK } from '../support/reliability.js';

/** Process kills in a CI run; a soak multiplies them. */
const KILLS = 50 * SOAK;
/** Trucks that are killed at random, and trucks that overheat and are left running (each raises one alert). */
const KILLABLE = ['ck-1', 'ck-2', 'ck-3'];
const OVERHEATING = ['ck-hot-1', 'ck-hot-2'];
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

type Part = 'agent' | 'gateway' | 'detector' | 'dispatcher' | 'kafka';
/** How often each part is picked; the broker's JVM takes seconds to come back, so it is picked least. */
const WEIGHTS: [Part, number][] = [
  ['agent', 40],
  ['gateway', 20],
  ['detector', 18],
  ['dispatcher', 16],
  ['kafka', 6],
];

/**
 * The whole pipeline over a real Kafka broker, each part its own process: trucks → gateway →
 * fleet.telemetry → detector → fleet.alerts → dispatcher → webhook. Parts are SIGKILLed at
 * random and restarted, 50 kills in all; then the trucks drain and every reading, alert and
 * notification is counted.
 */
describe('chaos: random SIGKILLs of agents, gateway, detector, dispatcher and the Kafka broker', () => {
  const dir = tempDir('fleet-chaos-');
  const rng = new Random(77);
  let kafka: KafkaBroker;
  let webhook: WebhookReceiver;
  let gatewayPort: number;
  const running = new Map<string, Proc>();
  const kills: Record<Part, number> = { agent: 0, gateway: 0, detector: 0, dispatcher: 0, kafka: 0 };

  const gatewayUrl = () => `mqtt://127.0.0.1:${gatewayPort}`;
  const args: Record<Exclude<Part, 'agent' | 'kafka'>, () => string[]> = {
    gateway: () => [
      'gateway',
      '--port',
      String(gatewayPort),
      '--data-dir',
      join(dir, 'gateway'),
      '--sinks',
      'kafka',
      '--kafka-brokers',
      kafka.bootstrap,
      '--kafka-partitions',
      '3',
      '--ops-port',
      '-1',
    ],
    detector: () => [
      'detector',
      '--source',
      'kafka',
      '--kafka-brokers',
      kafka.bootstrap,
      '--consumer-group',
      'chaos-detectors',
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      join(dir, 'rules.json'),
      '--mqtt-url',
      gatewayUrl(),
      '--dispatch',
      'kafka',
      '--ops-port',
      '-1',
    ],
    dispatcher: () => [
      'dispatcher',
      '--kafka-brokers',
      kafka.bootstrap,
      '--data-dir',
      join(dir, 'dispatcher'),
      '--mqtt-url',
      gatewayUrl(),
      '--webhook-url',
      webhook.url,
      '--ops-port',
      '-1',
    ],
  };
  const agentArgs = (vehicle: string) => {
    const config = join(dir, `${vehicle}.json`);
    writeFileSync(config, JSON.stringify({ faults: OVERHEATING.includes(vehicle) ? [{ kind: 'engine_overheat', fromS: 0 }] : [] }));
    return [
      'agent',
      '--config',
      config,
      '--vehicle',
      vehicle,
      '--mqtt-url',
      gatewayUrl(),
      '--data-dir',
      join(dir, 'agents'),
      '--sim-hz',
      '5',
      '--ops-port',
      '-1',
      '--reconnect-base-ms',
      '100',
      '--reconnect-max-ms',
      '1000',
    ];
  };
  // The gateway retries Kafka at most every second, so a restarted broker is found again at once.
  const start = (name: string, argv: string[]) =>
    running.set(name, runFleet(argv, { FLEET_LOG_LEVEL: 'warn', FLEET_SINK_RETRY_MAX_MS: '1000' }));

  beforeAll(async () => {
    mkdirSync(join(dir, 'cloud'), { recursive: true });
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(RULES));
    kafka = await startKafka({ partitionsDefault: 3 });
    webhook = await slowWebhookReceiver();
    gatewayPort = await freePort();
    start('gateway', args.gateway());
    await waitFor('the gateway', () => portOpen(gatewayPort), 30_000, 100);
    start('detector', args.detector());
    start('dispatcher', args.dispatcher());
    for (const v of [...KILLABLE, ...OVERHEATING]) start(v, agentArgs(v));
  });

  afterAll(async () => {
    for (const p of running.values()) await kill(p, 'SIGKILL');
    webhook?.server.close();
    await kafka?.stop();
  });

  const pick = (): Part => {
    let r = rng.next() * WEIGHTS.reduce((n, [, w]) => n + w, 0);
    for (const [part, w] of WEIGHTS) if ((r -= w) < 0) return part;
    return 'agent';
  };

  it(`loses no reading and notifies each alert once through ${KILLS} kills`, async () => {
    const started = Date.now();
    await sleep(3000);
    for (let i = 0; i < KILLS; i++) {
      // Two broker kills at fixed points, so every run crashes Kafka mid-stream at least twice.
      const part: Part = i === Math.floor(KILLS / 3) || i === Math.floor((2 * KILLS) / 3) ? 'kafka' : pick();
      kills[part]++;
      if (part === 'kafka') {
        kafka.kill();
        await sleep(500 + rng.next() * 1500);
        await kafka.restart();
      } else {
        const name = part === 'agent' ? KILLABLE[Math.floor(rng.next() * KILLABLE.length)]! : part;
        await kill(running.get(name)!, 'SIGKILL');
        await sleep(100 + rng.next() * 700);
        start(name, part === 'agent' ? agentArgs(name) : args[part]());
      }
      process.stderr.write(`# chaos kill ${i + 1}/${KILLS}: ${part}\n`);
      await sleep(300 + rng.next() * 900);
    }

    // The trucks stop sampling and drain (SIGTERM); the rest of the pipeline catches up.
    await sleep(3000);
    const vehicles = [...KILLABLE, ...OVERHEATING];
    for (const v of vehicles) {
      const agent = running.get(v)!;
      running.delete(v);
      await kill(agent, 'SIGTERM');
    }
    const produced = new Map(vehicles.map((v) => [v, producedBy(join(dir, 'agents', `${v}.buffer.db`))]));
    const leftInBuffers = vehicles.map((v) => bufferedIn(join(dir, 'agents', `${v}.buffer.db`)));
    // Whatever a drain left (a deadline hit while the gateway was down) goes out with one more, quiet, run.
    if (leftInBuffers.some((n) => n > 0)) {
      for (const v of vehicles) start(v, [...agentArgs(v), '--sim-hz', '0.01']);
      await waitFor('buffers drained', () => vehicles.every((v) => bufferedIn(join(dir, 'agents', `${v}.buffer.db`)) === 0), 60_000, 500);
      for (const v of vehicles) {
        const agent = running.get(v)!;
        running.delete(v);
        await kill(agent, 'SIGTERM');
      }
      for (const v of vehicles) produced.set(v, producedBy(join(dir, 'agents', `${v}.buffer.db`)));
    }

    const store = new Database(join(dir, 'cloud', 'fleet.db'), { readonly: true });
    const storedSeqs = (v: string) =>
      (store.prepare('SELECT seq FROM readings WHERE vehicle = ? ORDER BY seq').all(v) as { seq: number }[]).map((r) => r.seq);
    const totalProduced = [...produced.values()].reduce((a, b) => a + b, 0);
    try {
      await waitFor(
        `all ${totalProduced} readings stored`,
        () => vehicles.every((v) => storedSeqs(v).length >= produced.get(v)!),
        90_000,
        500,
      );
      for (const v of vehicles) {
        assert.deepEqual(
          storedSeqs(v),
          Array.from({ length: produced.get(v)! }, (_, i) => i + 1),
          `${v}: every seq stored once`,
        );
      }
      const alerts = () => store.prepare('SELECT id, vehicle FROM alerts ORDER BY vehicle').all() as { id: string; vehicle: string }[];
      await waitFor('an alert for each overheating truck', () => alerts().length >= OVERHEATING.length, 60_000, 500);
      await waitFor('each alert at the webhook', () => alerts().every((a) => webhook.received.includes(a.id)), 60_000, 500);
      await sleep(2000); // a late duplicate would arrive now
      const raised = alerts();
      assert.deepEqual(
        raised.map((a) => a.vehicle),
        OVERHEATING,
        'one alert per overheating truck, none for the others',
      );
      const perAlert = raised.map((a) => webhook.received.filter((k) => k === a.id).length);
      const { duplicates } = await countsOf(join(dir, 'cloud', 'fleet.db'));
      reportReliability({
        kind: 'chaos',
        scenario: 'pipeline kills over Kafka',
        kills,
        produced: totalProduced,
        stored: vehicles.reduce((n, v) => n + storedSeqs(v).length, 0),
        lost: vehicles.reduce((n, v) => n + produced.get(v)! - new Set(storedSeqs(v)).size, 0),
        duplicates,
        alertsExpected: OVERHEATING.length,
        alertsRaised: raised.length,
        // What a receiver honouring Idempotency-Key acts on; a repeat of a delivery a crash left in doubt is deduplicated there.
        notificationsPerAlert: Math.max(...raised.map((a) => new Set(webhook.received.filter((k) => k === a.id)).size)),
        durationS: Math.round((Date.now() - started) / 1000),
      });
      process.stdout.write(`# chaos webhook requests per alert (before Idempotency-Key dedupe): ${perAlert.join(', ')}\n`);
      assert.equal(
        Object.values(kills).reduce((a, b) => a + b, 0),
        KILLS,
      );
      assert.ok(
        kills.kafka >= 2 && kills.gateway > 0 && kills.detector > 0 && kills.dispatcher > 0 && kills.agent > 0,
        JSON.stringify(kills),
      );
      assert.ok(
        perAlert.every((n) => n >= 1 && n <= 2),
        `at most one repeat per alert, of a delivery in doubt: ${perAlert}`,
      );
    } finally {
      store.close();
    }
  });
});

function producedBy(bufferPath: string): number {
  const db = new Database(bufferPath, { readonly: true });
  try {
    return Number((db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: number }).value) - 1;
  } finally {
    db.close();
  }
}

function bufferedIn(bufferPath: string): number {
  const db = new Database(bufferPath, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function countsOf(storePath: string) {
  const store = new SqliteStore(storePath);
  try {
    return await store.counts();
  } finally {
    await store.close();
  }
}
