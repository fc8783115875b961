/**
 * A Kafka broker SIGKILLed under steady load: `fleet gateway --sinks kafka` on a three-node
 * KRaft cluster (replication 3, min.insync.replicas 2), 20 clients keeping QoS 1 publishes in
 * flight (bench/mqtt-load.ts), and after a steady stretch the node leading the most
 * partitions of fleet.telemetry is SIGKILLed. The PUBACKs of its partitions wait until the
 * controller fences the node and a follower leads (broker.session.timeout.ms, 9 s by
 * default), plus the gateway's retry delay. Figures: the longest PUBACK (beside the longest
 * one of the same stretch before the kill), and the time from the kill until a whole second
 * runs at 90 % of the rate before it. Afterwards the topic must hold at least as many records
 * as publishes were acknowledged while measuring (the warm-up's are in it too).
 */
import { performance } from 'node:perf_hooks';
import { Kafka, logLevel } from 'kafkajs';
import { encodeBatch } from '../shared/contract/codec.js';
import { STREAMS, topics } from '../shared/contract/topics.js';
import { startKafkaCluster, type KafkaCluster } from '../test/support/kafka-broker.js';
import { runLoad } from './mqtt-load.js';
import { emit, round, runPart, startGatewayProcess, truckReadings } from './support.js';

const USAGE = `Usage: node dist/bench/kafka-failover.js [--quick] [--help]

The longest PUBACK stall and the time back to full throughput when the Kafka node leading
the most partitions is SIGKILLed under steady QoS 1 load: fleet gateway on a three-node KRaft
cluster (replication 3, min.insync.replicas 2) started here. One JSON line per figure.
`;

const CLIENTS = 20;
const INFLIGHT = 4;
const READINGS_PER_BATCH = 10;
const PARTITIONS = 6;
/** Full throughput again: a whole second at this share of the rate before the kill. */
const RECOVERED_SHARE = 0.9;
const SECOND_MS = 1000;
const STEP_MS = 100;

const vehicle = (i: number) => `truck-${String(i).padStart(4, '0')}`;

/** The node leading the most partitions of the telemetry topic. */
async function busiestLeader(cluster: KafkaCluster): Promise<number> {
  const partitions = await cluster.partitions(STREAMS.telemetry);
  const led = (id: number) => partitions.filter((p) => p.leader === id).length;
  return cluster.nodes.map((n) => n.nodeId).reduce((best, id) => (led(id) > led(best) ? id : best));
}

/** Records stored in the topic, as the surviving nodes report its offsets. */
async function recordsInTopic(cluster: KafkaCluster): Promise<number> {
  const up = cluster.nodes.filter((n) => n.running).map((n) => n.bootstrap);
  const admin = new Kafka({ brokers: up, clientId: 'bench-failover', logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(STREAMS.telemetry);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** From `from`, the first instant a whole second of acks reaches `rate`; undefined if none does. */
function recoveredAt(ackTimes: number[], from: number, rate: number): number | undefined {
  const end = ackTimes.at(-1) ?? from;
  let lo = 0;
  let hi = 0;
  for (let t = from; t + SECOND_MS <= end; t += STEP_MS) {
    while (lo < ackTimes.length && ackTimes[lo]! < t) lo++;
    while (hi < ackTimes.length && ackTimes[hi]! < t + SECOND_MS) hi++;
    if (hi - lo >= rate) return t;
  }
  return undefined;
}

runPart(
  'kafka-failover',
  USAGE,
  (quick) => (quick ? 180_000 : 300_000),
  async (o, log) => {
    const steadyMs = o.quick ? 6_000 : 10_000;
    const afterMs = o.quick ? 30_000 : 45_000;
    const now = Date.now();
    const payloads = Array.from({ length: CLIENTS }, (_, i) => {
      const readings = truckReadings(vehicle(i), READINGS_PER_BATCH, now - 60_000, i + 1);
      return encodeBatch({ vehicle: vehicle(i), headTs: readings.at(-1)!.ts, readings });
    });
    log('starting a three-node Kafka cluster');
    const cluster = await startKafkaCluster(3);
    try {
      const gw = await startGatewayProcess({
        sinks: 'kafka',
        kafkaBrokers: cluster.brokers.join(','),
        args: ['--kafka-partitions', String(PARTITIONS), '--kafka-replication-factor', '3', '--kafka-min-insync-replicas', '2'],
      });
      log(`gateway on port ${gw.port}; ${CLIENTS} clients x ${INFLIGHT} in flight`);
      const acks: { at: number; latency: number }[] = [];
      let measureFrom = 0;
      let killedAt = 0;
      let victim = 0;
      let killing: Promise<void> | undefined;
      let messages: number;
      try {
        ({ messages } = await runLoad(
          {
            port: gw.port,
            clients: CLIENTS,
            inflight: INFLIGHT,
            warmupMs: 3_000,
            durationMs: steadyMs + afterMs,
            clientId: vehicle,
            topic: (i) => topics.telemetry(vehicle(i)),
            payload: (i) => payloads[i]!,
            onMeasure: () => {
              measureFrom = performance.now();
              killing = (async () => {
                await new Promise((r) => setTimeout(r, steadyMs));
                victim = await busiestLeader(cluster);
                killedAt = performance.now();
                cluster.node(victim).kill();
                log(`node ${victim} SIGKILLed`);
              })();
            },
            onAck: (latency) => acks.push({ at: performance.now(), latency }),
          },
          log,
        ));
        await killing;
      } finally {
        await gw.stop();
      }
      if (killedAt === 0) throw new Error('the load ended before the broker was killed');

      const before = acks.filter((a) => a.at < killedAt);
      const rateBefore = (before.length / (killedAt - measureFrom)) * SECOND_MS;
      // A publish sent before the kill and acknowledged after it stalled too: the latency says how long.
      const stall = Math.max(...acks.filter((a) => a.at >= killedAt).map((a) => a.latency));
      const longestBefore = Math.max(...before.map((a) => a.latency));
      const back = recoveredAt(
        acks.map((a) => a.at),
        killedAt,
        RECOVERED_SHARE * rateBefore,
      );
      if (back === undefined)
        throw new Error(
          `throughput did not come back to ${RECOVERED_SHARE * 100} % of ${Math.round(rateBefore)} msg/s within ${afterMs} ms`,
        );
      const stored = await recordsInTopic(cluster);
      log(`${messages} publishes acknowledged in the measured interval, ${stored} records in ${STREAMS.telemetry}`);
      if (stored < messages) throw new Error(`${messages} publishes acknowledged but only ${stored} records in the topic`);

      const note = `3 KRaft nodes, RF 3, min ISR 2, ${PARTITIONS} partitions; ${CLIENTS} clients x ${INFLIGHT} in flight, ${Math.round(rateBefore)} msg/s before the kill; the node leading the most partitions SIGKILLed`;
      emit('kafka-failover', {
        figure: 'longest PUBACK stall, a broker SIGKILLed under load',
        value: Math.round(stall),
        unit: 'ms',
        peer: `longest PUBACK in the ${steadyMs / 1000} s before`,
        peerValue: Math.round(longestBefore),
        note,
      });
      emit('kafka-failover', {
        figure: `time from the kill to full throughput (a second at ${RECOVERED_SHARE * 100} % of the rate before)`,
        value: Math.round(back - killedAt),
        unit: 'ms',
        note: `${note}; ${messages} publishes acknowledged while measuring, ${stored} records in the topic`,
      });
      log(`stall ${round(stall)} ms, full throughput after ${round(back - killedAt)} ms`);
    } finally {
      await cluster.stop();
    }
  },
);
