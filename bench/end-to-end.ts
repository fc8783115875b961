/**
 * End to end over Kafka, every part running: simulated trucks (real agents: buffer, MQTT
 * session, DriverAlert) in this process → `fleet gateway --sinks kafka` → a Kafka broker →
 * `fleet detector --source kafka` → the driver channel back through the gateway → the truck's
 * DriverAlert. Every 10th truck's engine overheats, onsets spread over the run. The latency
 * of each driver alert is from the gateway's arrival of the reading that closed the anomalous
 * window (the alert's closedAt) to the DriverAlert raise in the cab, on this machine's clock.
 *
 * The trucks sample every sensor at 2 Hz (10 readings/s) and commit and publish once a second
 * (batches of 10) with synchronous=NORMAL: on the road each has its own computer and disk, here
 * a thousand share one, and the fsyncs of a thousand trucks would be what is measured.
 * The engine-overheat threshold is 95 °C instead of 105 °C so an overheat is detected ~15 s
 * after its onset rather than ~45 s, which keeps the run short; the path it takes is the same.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { agentConfigSchema } from '../agent/agent-config.js';
import { DEFAULT_RULES } from '../shared/rules/default-rules.js';
import { createLogger } from '../shared/log.js';
import { createSimulatedTruck, type SimulatedTruck } from '../simulators/simulated-agent.js';
import { FLEET_BIN, tempDir } from '../test/support/harness.js';
import { startKafka } from '../test/support/kafka-broker.js';
import { emit, percentile, round, runPart, sleep, spawnNode, startGatewayProcess } from './support.js';

const USAGE = `Usage: node dist/bench/end-to-end.js [--quick] [--vehicles N] [--help]

1,000 simulated trucks at 10 readings/s over Kafka with gateway and detector running: p50 and
p99 from the arrival of the reading that closes an anomalous window to the driver alert in the
cab. One JSON line per figure.
`;

const OVERHEAT_EVERY = 10;
const FLOOR_P99_MS = 500;

runPart(
  'e2e',
  USAGE,
  (quick) => (quick ? 110_000 : 300_000),
  async (o, log) => {
    const vehicles = Number(o.values.vehicles ?? 1000);
    const runS = o.quick ? 30 : 120;
    const dir = tempDir('fleet-bench-e2e-');
    const rulesFile = join(dir, 'rules.json');
    writeFileSync(
      rulesFile,
      JSON.stringify({ ...DEFAULT_RULES, rules: DEFAULT_RULES.rules.map((r) => (r.name === 'engine-overheat' ? { ...r, above: 95 } : r)) }),
    );

    log('starting the Kafka broker');
    const kafka = await startKafka();
    const gateway = await startGatewayProcess({ sinks: 'kafka', kafkaBrokers: kafka.bootstrap });
    const detector = spawnNode(
      FLEET_BIN,
      [
        'detector',
        '--source',
        'kafka',
        '--kafka-brokers',
        kafka.bootstrap,
        '--data-dir',
        join(dir, 'cloud'),
        '--mqtt-url',
        gateway.url,
        '--rules-file',
        rulesFile,
        '--ops-port',
        '-1',
      ],
      { env: { FLEET_LOG_LEVEL: 'warn' } },
    );
    const trucks: SimulatedTruck[] = [];
    try {
      const quiet = createLogger('bench-truck', { level: 'silent' });
      // Onsets spread over the first half of the run, so alerts do not all come in one burst.
      const onsetS = (i: number) => 5 + ((i / OVERHEAT_EVERY) % 20) * ((runS / 2 - 5) / 20);
      for (let i = 0; i < vehicles; i++) {
        const vehicle = `truck-${String(i).padStart(4, '0')}`;
        const config = agentConfigSchema.parse({
          vehicle,
          mqttUrl: gateway.url,
          dataDir: join(dir, 'trucks'),
          simSeed: i + 1,
          simHz: 2,
          synchronous: 'NORMAL',
          commitIntervalMs: 1000,
          batchMaxReadings: 10,
          lingerMs: 1000,
          opsPort: -1,
          edgeRules: false,
          drainOnStopMs: 0,
          faults: i % OVERHEAT_EVERY === 0 ? [{ kind: 'engine_overheat', fromS: onsetS(i) }] : [],
        });
        trucks.push(createSimulatedTruck(config, quiet));
      }
      const t0 = Date.now();
      await Promise.all(trucks.map((t) => t.agent.start()));
      log(
        `${vehicles} trucks started in ${round((Date.now() - t0) / 1000, 1)} s (${vehicles / OVERHEAT_EVERY} will overheat); running ${runS} s`,
      );
      const store = join(dir, 'cloud', 'fleet.db');
      const stored = () => {
        try {
          const db = new Database(store, { readonly: true, fileMustExist: true });
          try {
            return (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
          } finally {
            db.close();
          }
        } catch {
          return 0;
        }
      };
      const produced = () => trucks.reduce((n, t) => n + t.agent.buffer.stats().nextSeq - 1, 0);
      const started = Date.now();
      const storedAtStart = stored();
      const producedAtStart = produced();
      let lastLog = 0;
      while (Date.now() - started < runS * 1000) {
        await sleep(1000);
        if (Date.now() - lastLog >= 5000) {
          lastLog = Date.now();
          const shown = trucks.reduce((n, t) => n + t.driver.shown.length, 0);
          log(
            `${round((Date.now() - started) / 1000)} s: ${produced().toLocaleString('en')} readings produced, ${stored().toLocaleString('en')} stored, ${shown} driver alerts`,
          );
        }
      }
      const seconds = (Date.now() - started) / 1000;
      const storedRate = (stored() - storedAtStart) / seconds;
      const producedRate = (produced() - producedAtStart) / seconds;
      const lag = produced() - stored();
      const latencies = trucks.flatMap((t) => t.driver.shown.map((s) => s.shownAt - s.alert.closedAt)).sort((a, b) => a - b);
      const falseAlerts = trucks.filter((_, i) => i % OVERHEAT_EVERY !== 0).reduce((n, t) => n + t.driver.shown.length, 0);
      log(
        `${latencies.length} driver alerts (${falseAlerts} on healthy trucks); ${Math.round(storedRate).toLocaleString('en')} readings/s stored of ${Math.round(producedRate).toLocaleString('en')} produced; ${lag.toLocaleString('en')} not yet stored at the end`,
      );
      if (latencies.length === 0)
        throw new Error('no driver alert arrived: the pipeline did not keep up or the overheats were not detected');
      const note = `${vehicles} trucks x 10 readings/s over Kafka; ${latencies.length} driver alerts`;
      emit('e2e', {
        figure: 'alert latency p50, window-closing reading at the gateway to driver alert',
        value: Math.round(percentile(latencies, 0.5)),
        unit: 'ms',
        note,
      });
      emit('e2e', {
        figure: 'alert latency p99, window-closing reading at the gateway to driver alert',
        value: Math.round(percentile(latencies, 0.99)),
        unit: 'ms',
        floor: FLOOR_P99_MS,
        floorOp: '<=',
        note,
      });
      emit('e2e', {
        figure: 'readings/s stored by the detector while running',
        value: Math.round(storedRate),
        unit: 'readings/s',
        note: `${Math.round(producedRate).toLocaleString('en')} readings/s produced; ${lag.toLocaleString('en')} behind at the end; ${falseAlerts} alerts on healthy trucks`,
      });
    } finally {
      await Promise.all(trucks.map((t) => t.agent.stop().catch(() => undefined)));
      detector.child.kill('SIGTERM');
      await detector.exited;
      await gateway.stop();
      await kafka.stop();
    }
  },
  { vehicles: { type: 'string' } },
);
