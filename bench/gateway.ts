/**
 * The gateway under QoS 1 load from 100 connected agents, beside Mosquitto under the same
 * load. Each client publishes one encoded telemetry batch (10 readings: one second of a truck)
 * to its own fleet/v1/{vehicle}/telemetry, keeping a fixed number of publishes in flight; the
 * gateway decodes and validates it and writes it to its sink before the PUBACK (embedded:
 * SQLite, synchronous=FULL; kafka: acks=all), Mosquitto only routes it (no subscriber, no
 * persistence). The broker runs as `fleet gateway` (or mosquitto) pinned to core 1; the load
 * generator (bench/mqtt-load.ts) is the same for all of them.
 *
 * Then the gateway as a cluster (linked by a redis-server started here): one and two
 * `fleet gateway` processes sharing one port (SO_REUSEPORT), each with its own embedded
 * sink, the second pinned to core 0, where the load generator also runs (a machine of two
 * cores has no third for it).
 */
import { encodeBatch } from '../shared/contract/codec.js';
import { topics } from '../shared/contract/topics.js';
import { startKafka, type KafkaBroker } from '../test/support/kafka-broker.js';
import { freePort } from '../test/support/harness.js';
import { RedisServer } from '../test/support/redis-server.js';
import { startMosquitto } from './mosquitto.js';
import { runLoad, type LoadResult } from './mqtt-load.js';
import { emit, percentile, round, runPart, startGatewayProcess, truckReadings } from './support.js';

const USAGE = `Usage: node dist/bench/gateway.js [--quick] [--help]

QoS 1 messages/s and PUBACK latency with 100 connected agents: the gateway with its embedded
sink, the gateway with the Kafka sink (acks=all, a broker started here), one and two gateway
processes of a cluster behind one port (a redis-server started here), and Mosquitto under
the same load. One JSON line per figure.
`;

const CLIENTS = 100;
const INFLIGHT = 8;
const READINGS_PER_BATCH = 10;
const BROKER_CORE = 1;
/** Where a cluster's second gateway process runs. */
const SECOND_CORE = 0;
const FLOOR_VS_MOSQUITTO = 0.8;

type Target = 'mosquitto' | 'embedded' | 'kafka' | 'cluster-1' | 'cluster-2';

/** Gateway processes of a cluster behind one port. */
const CLUSTER_PROCESSES = { 'cluster-1': 1, 'cluster-2': 2 } as const;

interface Measured {
  rate: number;
  p50: number;
  p99: number;
}

const vehicle = (i: number) => `truck-${String(i).padStart(4, '0')}`;

/** Runs the load against a broker on `port`. */
function load(port: number, payloads: Buffer[], quick: boolean, log: (msg: string) => void): Promise<LoadResult> {
  return runLoad(
    {
      port,
      clients: CLIENTS,
      inflight: INFLIGHT,
      warmupMs: quick ? 1_000 : 3_000,
      durationMs: quick ? 4_000 : 15_000,
      clientId: vehicle,
      topic: (i) => topics.telemetry(vehicle(i)),
      payload: (i) => payloads[i]!,
    },
    log,
  );
}

async function measure(
  target: Target,
  payloads: Buffer[],
  quick: boolean,
  kafka: () => Promise<KafkaBroker>,
  redis: () => Promise<RedisServer>,
  log: (msg: string) => void,
): Promise<Measured> {
  let result: LoadResult;
  if (target === 'cluster-1' || target === 'cluster-2') {
    const cluster = { port: await freePort(), redisUrl: (await redis()).url };
    const cores = [BROKER_CORE, SECOND_CORE].slice(0, CLUSTER_PROCESSES[target]);
    const gws = [];
    try {
      for (const core of cores) gws.push(await startGatewayProcess({ core, cluster }));
      log(`${gws.length} gateway process(es) on port ${cluster.port}, cores ${cores.join(', ')}`);
      result = await load(cluster.port, payloads, quick, log);
    } finally {
      for (const gw of gws) await gw.stop();
    }
  } else if (target === 'mosquitto') {
    const broker = await startMosquitto({ core: BROKER_CORE });
    log(`mosquitto ${broker.version} on port ${broker.port}`);
    try {
      result = await load(broker.port, payloads, quick, log);
    } finally {
      await broker.stop();
    }
  } else {
    const gw = await startGatewayProcess({
      core: BROKER_CORE,
      ...(target === 'kafka' ? { sinks: 'kafka', kafkaBrokers: (await kafka()).bootstrap } : {}),
    });
    log(`gateway (sink ${target}) on port ${gw.port}`);
    try {
      result = await load(gw.port, payloads, quick, log);
    } finally {
      await gw.stop();
    }
  }
  const m = { rate: result.messages / result.seconds, p50: percentile(result.latencies, 0.5), p99: percentile(result.latencies, 0.99) };
  log(`${target}: ${Math.round(m.rate).toLocaleString('en')} msg/s, PUBACK p50 ${round(m.p50, 1)} ms, p99 ${round(m.p99, 1)} ms`);
  return m;
}

runPart(
  'gateway',
  USAGE,
  (quick) => (quick ? 90_000 : 300_000),
  async (o, log) => {
    const now = Date.now();
    const payloads = Array.from({ length: CLIENTS }, (_, i) => {
      const readings = truckReadings(vehicle(i), READINGS_PER_BATCH, now - 60_000, i + 1);
      return encodeBatch({ vehicle: vehicle(i), headTs: readings.at(-1)!.ts, readings });
    });
    log(
      `${CLIENTS} clients, ${INFLIGHT} QoS 1 publishes in flight each, payload ${payloads[0]!.length} bytes (${READINGS_PER_BATCH} readings)`,
    );
    let broker: KafkaBroker | undefined;
    const kafka = async () => {
      if (!broker) {
        log('starting the Kafka broker');
        broker = await startKafka();
      }
      return broker;
    };
    let redisServer: RedisServer | undefined;
    const redis = async () => (redisServer ??= await new RedisServer().start());
    const runs = o.quick ? 1 : 2;
    const best = new Map<Target, Measured>();
    try {
      for (let r = 0; r < runs; r++) {
        const order: Target[] =
          r % 2 === 0
            ? ['mosquitto', 'embedded', 'kafka', 'cluster-1', 'cluster-2']
            : ['cluster-2', 'cluster-1', 'kafka', 'embedded', 'mosquitto'];
        for (const t of order) {
          const m = await measure(t, payloads, o.quick, kafka, redis, log);
          const prev = best.get(t);
          if (!prev || m.rate > prev.rate) best.set(t, m);
        }
      }
    } finally {
      await broker?.stop();
      await redisServer?.stop();
    }
    const mosq = best.get('mosquitto')!;
    const note = `${CLIENTS} clients x ${INFLIGHT} in flight, ${READINGS_PER_BATCH} readings per message, broker on one core`;
    for (const sink of ['embedded', 'kafka'] as const) {
      const m = best.get(sink)!;
      const name = sink === 'embedded' ? 'embedded sink' : 'Kafka sink (acks=all)';
      emit('gateway', {
        figure: `QoS 1 messages/s, ${name}`,
        value: Math.round(m.rate),
        unit: 'msg/s',
        ...(sink === 'embedded' ? { floor: Math.round(FLOOR_VS_MOSQUITTO * mosq.rate), floorOp: '>=' as const } : {}),
        peer: 'Mosquitto',
        peerValue: Math.round(mosq.rate),
        note: sink === 'embedded' ? `${note}; floor 0.8 x Mosquitto` : note,
      });
      emit('gateway', {
        figure: `PUBACK p50, ${name}`,
        value: round(m.p50, 2),
        unit: 'ms',
        peer: 'Mosquitto',
        peerValue: round(mosq.p50, 2),
        note,
      });
      emit('gateway', {
        figure: `PUBACK p99, ${name}`,
        value: round(m.p99, 2),
        unit: 'ms',
        peer: 'Mosquitto',
        peerValue: round(mosq.p99, 2),
        note,
      });
    }
    const one = best.get('cluster-1')!;
    for (const target of ['cluster-1', 'cluster-2'] as const) {
      const m = best.get(target)!;
      const n = CLUSTER_PROCESSES[target];
      emit('gateway', {
        figure: `QoS 1 messages/s, embedded sink, ${n} gateway process${n > 1 ? 'es' : ''} behind one port`,
        value: Math.round(m.rate),
        unit: 'msg/s',
        peer: 'Mosquitto',
        peerValue: Math.round(mosq.rate),
        note: `${CLIENTS} clients x ${INFLIGHT} in flight, cluster linked by Redis, SO_REUSEPORT; ${round(m.rate / one.rate, 2)} x one process; cores ${[BROKER_CORE, SECOND_CORE].slice(0, n).join(', ')}${n > 1 ? ' (core 0 shared with the load generator)' : ''}`,
      });
    }
  },
);
