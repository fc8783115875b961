/**
 * kafkajs against @platformatic/kafka, on the same real broker in the same process run.
 *
 * One single-node Kafka (test/support/kafka-broker.ts) on loopback; each client creates its own
 * topics (6 partitions) with its own admin, then, per run:
 *  - produce: N telemetry records (one encoded batch of 50 readings each, ~400 bytes), keyed by
 *    1,000 vehicle ids, acks=all, idempotent producer, `--batch` records per send call;
 *  - consume: the same N records from the beginning as a fresh consumer group, committing offsets
 *    by hand every COMMIT_EVERY records (as the detector's source does); timed from subscribe to
 *    the last record, so the group join is included (reported apart as firstRecordMs).
 * First both clients produce and consume `--warmup` records untimed (the broker's JVM and each
 * client's code get warm), then each measurement runs `--runs` times (default 2), the better is
 * reported; the clients' order alternates between runs. After every produce the topic's end
 * offsets must add up to N, and every consume must read exactly N.
 *
 * stdout: one JSON line per figure, then one with the ratios (platformatic / kafkajs).
 * stderr: progress.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  Admin as PltAdmin,
  Consumer as PltConsumer,
  MessagesStreamFallbackModes,
  MessagesStreamModes,
  ProduceAcks,
  Producer as PltProducer,
  stringSerializer,
  type Message as PltMessage,
  type MessageToProduce,
} from '@platformatic/kafka';
import { Kafka, logLevel, Partitioners, type logCreator, type Message as KjsMessage } from 'kafkajs';
import type { Batch } from '../shared/contract/batch.js';
import { encodeBatch, quantize } from '../shared/contract/codec.js';
import { SENSORS, type Reading } from '../shared/contract/reading.js';
import { startKafka, type KafkaBroker } from '../test/support/kafka-broker.js';

const FULL_RECORDS = 100_000;
const QUICK_RECORDS = 20_000;

const USAGE = `Usage: npm run bench:kafka-client -- [options]
       node dist/bench/kafka-client.js [options]

Measures kafkajs and @platformatic/kafka against one local Kafka broker (started here from
.cache/kafka, see scripts/services/kafka.sh fetch): produce (acks=all, idempotent) and
consume (consumer group, from the beginning, manual commits). Progress on stderr, one
JSON line per figure on stdout, then a line with the ratios platformatic/kafkajs.

Options:
  --quick          ${QUICK_RECORDS.toLocaleString('en')} records instead of ${FULL_RECORDS.toLocaleString('en')}
  --records N      records per measurement (overrides --quick)
  --batch N        records per send call, both clients (default 500)
  --inflight N     kafkajs sendBatch calls in flight (default 4); @platformatic/kafka sends
                   one call at a time (see docs/KAFKA-CLIENT.md for why)
  --runs N         runs per measurement, the better one is reported (default 2)
  --warmup N       records each client produces and consumes untimed first (default 5,000; 0: none)
  --help           this text
`;

const VEHICLES = 1_000;
const READINGS_PER_RECORD = 50;
const PARTITIONS = 6;
/** The consumers commit their position this often (records), and once at the end. */
const COMMIT_EVERY = 5_000;
const PROGRESS_EVERY_MS = 1_000;
/**
 * Both consumers fetch, hand the records out, and only then fetch again (one fetch per broker in
 * flight). @platformatic/kafka's default fetch size is 10 MB per response; 1 MB measured best
 * here (about +15 % over the default; 512 KB to 50 MB tried). kafkajs keeps its defaults
 * (10 MB per response, at most 1 MB per partition).
 */
const PLATFORMATIC_FETCH_MAX_BYTES = 1024 * 1024;

type ClientName = 'kafkajs' | 'platformatic';

interface Options {
  records: number;
  batch: number;
  inflight: number;
  runs: number;
  warmup: number;
  budgetMs: number;
}

interface Figure {
  seconds: number;
  records: number;
  bytes: number;
  firstRecordMs?: number;
}

/** The records, built once and shared by both clients. */
interface Workload {
  keys: Buffer[];
  values: Buffer[];
  /** receivedAt of record i is base + i: the record timestamp and the `receivedAt` header. */
  base: number;
  bytesFor(n: number): number;
  avgRecordBytes: number;
}

const log = (msg: string) => process.stderr.write(`[kafka-client] ${msg}\n`);
const out = (obj: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const round = (v: number, digits = 0) => Number(v.toFixed(digits));

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      records: { type: 'string' },
      batch: { type: 'string', default: '500' },
      inflight: { type: 'string', default: '4' },
      runs: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '5000' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
  const records = values.records !== undefined ? int('records', values.records, 1) : values.quick ? QUICK_RECORDS : FULL_RECORDS;
  return {
    records,
    batch: int('batch', values.batch, 1),
    inflight: int('inflight', values.inflight, 1),
    runs: int('runs', values.runs, 1),
    warmup: int('warmup', values.warmup, 0),
    // The whole run, broker start included, must end well inside 2 (quick) or 5 minutes.
    budgetMs: values.quick && values.records === undefined ? 110_000 : 280_000,
  };
}

// ---------------------------------------------------------------------------------------------
// The workload: one telemetry batch per record, as the gateway's Kafka sink wrote it when
// docs/KAFKA-CLIENT.md was measured (the receive time in a header; it is inside the value now).

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function vehicleBatch(v: number, rnd: () => number): Batch {
  const vehicle = `truck-${String(v).padStart(4, '0')}`;
  const start = Date.UTC(2026, 10, 2, 8) + Math.floor(rnd() * 3600_000);
  let lat = 45 + rnd() * 5;
  let lon = 5 + rnd() * 10;
  const readings: Reading[] = [];
  for (let i = 0; i < READINGS_PER_RECORD; i++) {
    const sensor = SENSORS[i % SENSORS.length]!;
    const base = { vehicle, seq: 1_000 + i + 1, ts: start + i * 200, clock: 'synced' as const, sensor, quality: 'good' as const };
    switch (sensor) {
      case 'engine_temp':
        readings.push({ ...base, value: quantize(85 + rnd() * 15) });
        break;
      case 'container_temp':
        readings.push({ ...base, value: quantize(-18 + rnd() * 3) });
        break;
      case 'speed':
        readings.push({ ...base, value: quantize(60 + rnd() * 40) });
        break;
      case 'rpm':
        readings.push({ ...base, value: quantize(1_200 + rnd() * 800) });
        break;
      case 'gps':
        lat += (rnd() - 0.5) * 1e-3;
        lon += (rnd() - 0.5) * 1e-3;
        readings.push({ ...base, value: quantize(60 + rnd() * 40), position: { lat, lon, heading: round(rnd() * 359, 1), fix: '3d' } });
        break;
    }
  }
  return { vehicle, headTs: readings.at(-1)!.ts, readings };
}

function buildWorkload(): Workload {
  const rnd = mulberry32(20261125);
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  for (let v = 0; v < VEHICLES; v++) {
    const batch = vehicleBatch(v, rnd);
    keys.push(Buffer.from(batch.vehicle));
    values.push(encodeBatch(batch));
  }
  const perCycle = keys.reduce((s, k, i) => s + k.length + values[i]!.length, 0);
  const bytesFor = (n: number) => {
    let bytes = Math.floor(n / VEHICLES) * perCycle;
    for (let i = 0; i < n % VEHICLES; i++) bytes += keys[i]!.length + values[i]!.length;
    return bytes;
  };
  return { keys, values, base: Date.now(), bytesFor, avgRecordBytes: perCycle / VEHICLES };
}

// ---------------------------------------------------------------------------------------------

class Progress {
  private last = performance.now();
  private readonly started = performance.now();
  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}
  tick(done: number): void {
    const now = performance.now();
    if (now - this.last < PROGRESS_EVERY_MS && done < this.total) return;
    this.last = now;
    const rate = done / ((now - this.started) / 1000);
    log(`${this.label}: ${done.toLocaleString('en')}/${this.total.toLocaleString('en')} (${Math.round(rate).toLocaleString('en')} rec/s)`);
  }
}

/**
 * Offset commits in the background, one at a time and in order, as the detector's source makes
 * them: reading goes on while a commit is in flight.
 */
class Committer<Offset> {
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly send: (at: [partition: number, offset: Offset][]) => Promise<void>,
    private readonly fail: (err: Error) => void,
  ) {}
  commit(position: Map<number, Offset>): void {
    const at = [...position];
    this.chain = this.chain.then(() => this.send(at)).catch((err: Error) => this.fail(err));
  }
  flush(): Promise<void> {
    return this.chain;
  }
}

/** kafkajs's log lines go to stderr, never to stdout (which carries only the JSON figures). */
const kafkajsToStderr: logCreator =
  () =>
  ({ namespace, log: { message, timestamp: _t, logger: _l, ...rest } }) =>
    log(`kafkajs ${namespace}: ${message} ${JSON.stringify(rest)}`);

function kafkajs(bootstrap: string, clientId: string): Kafka {
  return new Kafka({ brokers: [bootstrap], clientId, logLevel: logLevel.ERROR, logCreator: kafkajsToStderr });
}

/** Settles with the first of `p` and a timer. */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// kafkajs 2.2.4

async function kafkajsCreateTopics(bootstrap: string, topics: string[]): Promise<void> {
  const admin = kafkajs(bootstrap, 'bench-kafkajs-admin').admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS, replicationFactor: 1 })),
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

async function kafkajsEndOffsets(bootstrap: string, topic: string): Promise<number> {
  const admin = kafkajs(bootstrap, 'bench-kafkajs-admin').admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

async function kafkajsProduce(bootstrap: string, topic: string, w: Workload, o: Options, label: string): Promise<Figure> {
  const producer = kafkajs(bootstrap, 'bench-kafkajs-producer').producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  const n = o.records;
  const progress = new Progress(label, n);
  try {
    let next = 0;
    let done = 0;
    const t0 = performance.now();
    // Several sendBatch calls in flight: the idempotent producer still sends one request per
    // broker at a time (it holds a lock per broker), but the next batch is encoded meanwhile.
    const worker = async () => {
      while (next < n) {
        const from = next;
        const to = Math.min(n, from + o.batch);
        next = to;
        const messages: KjsMessage[] = [];
        for (let i = from; i < to; i++) {
          const at = String(w.base + i);
          messages.push({ key: w.keys[i % VEHICLES]!, value: w.values[i % VEHICLES]!, timestamp: at, headers: { receivedAt: at } });
        }
        await producer.sendBatch({ topicMessages: [{ topic, messages }], acks: -1 });
        done += to - from;
        progress.tick(done);
      }
    };
    await Promise.all(Array.from({ length: o.inflight }, worker));
    return { seconds: (performance.now() - t0) / 1000, records: n, bytes: w.bytesFor(n) };
  } finally {
    await producer.disconnect();
  }
}

async function kafkajsConsume(bootstrap: string, topic: string, o: Options, label: string): Promise<Figure> {
  const consumer = kafkajs(bootstrap, 'bench-kafkajs-consumer').consumer({
    groupId: `${topic}-group`,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: 500,
    retry: { retries: 2 },
  });
  await consumer.connect();
  const n = o.records;
  const progress = new Progress(label, n);
  let count = 0;
  let bytes = 0;
  let sinceCommit = 0;
  let firstAt = 0;
  let lastAt = 0;
  const position = new Map<number, number>();
  try {
    await new Promise<void>((resolve, reject) => {
      const committer = new Committer<number>(
        (at) => consumer.commitOffsets(at.map(([partition, offset]) => ({ topic, partition, offset: String(offset) }))),
        reject,
      );
      consumer.on(consumer.events.CRASH, ({ payload }) => reject(payload.error));
      const t0 = performance.now();
      void (async () => {
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            if (count === 0) firstAt = performance.now() - t0;
            for (const m of batch.messages) bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
            count += batch.messages.length;
            sinceCommit += batch.messages.length;
            position.set(batch.partition, Number(batch.lastOffset()) + 1);
            progress.tick(count);
            if (count >= n) {
              lastAt = performance.now() - t0;
              committer.commit(position);
              committer.flush().then(resolve, reject);
            } else if (sinceCommit >= COMMIT_EVERY) {
              sinceCommit = 0;
              committer.commit(position);
            }
          },
        });
      })().catch(reject);
    });
    if (count !== n) throw new Error(`${label}: read ${count} records, expected ${n}`);
    return { seconds: lastAt / 1000, records: count, bytes, firstRecordMs: firstAt };
  } finally {
    await consumer.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// @platformatic/kafka 1.35.0

async function platformaticCreateTopics(bootstrap: string, topics: string[]): Promise<void> {
  const admin = new PltAdmin({ clientId: 'bench-platformatic-admin', bootstrapBrokers: [bootstrap] });
  try {
    await admin.createTopics({ topics, partitions: PARTITIONS, replicas: 1 });
    // Created is not yet led: wait until every partition has a leader, as kafkajs's waitForLeaders.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const meta = await admin.metadata({ topics, forceUpdate: true });
      const ready = topics.every((t) => {
        const tm = meta.topics.get(t);
        return tm !== undefined && tm.partitionsCount === PARTITIONS && tm.partitions.every((p) => p.leader >= 0);
      });
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await admin.close();
  }
}

async function platformaticEndOffsets(bootstrap: string, topic: string): Promise<number> {
  const admin = new PltAdmin({ clientId: 'bench-platformatic-admin', bootstrapBrokers: [bootstrap] });
  try {
    const partitions = (at: bigint) => Array.from({ length: PARTITIONS }, (_, partitionIndex) => ({ partitionIndex, timestamp: at }));
    const sum = async (at: bigint) =>
      (await admin.listOffsets({ topics: [{ name: topic, partitions: partitions(at) }] }))
        .flatMap((t) => t.partitions)
        .reduce((s, p) => s + Number(p.offset), 0);
    // -1: the next offset to be written (the end); -2: the first one still stored.
    return (await sum(-1n)) - (await sum(-2n));
  } finally {
    await admin.close();
  }
}

async function platformaticProduce(bootstrap: string, topic: string, w: Workload, o: Options, label: string): Promise<Figure> {
  const producer = new PltProducer<Buffer, Buffer, string, string>({
    clientId: 'bench-platformatic-producer',
    bootstrapBrokers: [bootstrap],
    idempotent: true,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
    serializers: { headerKey: stringSerializer, headerValue: stringSerializer },
  });
  const n = o.records;
  const progress = new Progress(label, n);
  try {
    // The producer connects lazily, and fetches its producer id with the first send: done here,
    // outside the clock, as kafkajs's producer.connect() (which also fetches it) is.
    await producer.initIdempotentProducer({});
    await producer.metadata({ topics: [topic] });
    const t0 = performance.now();
    // One send at a time: an idempotent @platformatic/kafka 1.x producer numbers a batch when the
    // request is built and advances its sequence numbers only when the response arrives, so two
    // sends in flight reuse the same sequence numbers (see docs/KAFKA-CLIENT.md). ProducerStream
    // in the library itself also keeps one send in flight.
    for (let from = 0; from < n; from += o.batch) {
      const to = Math.min(n, from + o.batch);
      const messages: MessageToProduce<Buffer, Buffer, string, string>[] = [];
      for (let i = from; i < to; i++) {
        const at = w.base + i;
        messages.push({
          topic,
          key: w.keys[i % VEHICLES]!,
          value: w.values[i % VEHICLES]!,
          timestamp: BigInt(at),
          headers: { receivedAt: String(at) },
        });
      }
      await producer.send({ messages, acks: ProduceAcks.ALL });
      progress.tick(to);
    }
    return { seconds: (performance.now() - t0) / 1000, records: n, bytes: w.bytesFor(n) };
  } finally {
    await producer.close();
  }
}

async function platformaticConsume(bootstrap: string, topic: string, o: Options, label: string): Promise<Figure> {
  const consumer = new PltConsumer({
    clientId: 'bench-platformatic-consumer',
    bootstrapBrokers: [bootstrap],
    groupId: `${topic}-group`,
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTime: 500,
    maxBytes: PLATFORMATIC_FETCH_MAX_BYTES,
    retries: 2,
  });
  const n = o.records;
  const progress = new Progress(label, n);
  let count = 0;
  let bytes = 0;
  let sinceCommit = 0;
  let firstAt = 0;
  let lastAt = 0;
  const position = new Map<number, bigint>();
  try {
    const t0 = performance.now();
    // Like kafkajs's fromBeginning: the group's committed offsets, the earliest where it has none.
    const stream = await consumer.consume({
      topics: [topic],
      mode: MessagesStreamModes.COMMITTED,
      fallbackMode: MessagesStreamFallbackModes.EARLIEST,
      autocommit: false,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        // leaderEpoch -1: unknown, so the broker does not check it.
        const committer = new Committer<bigint>(
          (at) => consumer.commit({ offsets: at.map(([partition, offset]) => ({ topic, partition, offset, leaderEpoch: -1 })) }),
          reject,
        );
        stream.on('error', reject);
        stream.on('data', (m: PltMessage<Buffer, Buffer, Buffer, Buffer>) => {
          if (count === 0) firstAt = performance.now() - t0;
          bytes += (m.key?.length ?? 0) + (m.value?.length ?? 0);
          count++;
          sinceCommit++;
          position.set(m.partition, m.offset + 1n);
          progress.tick(count);
          if (count === n) {
            lastAt = performance.now() - t0;
            stream.pause();
            committer.commit(position);
            committer.flush().then(resolve, reject);
          } else if (sinceCommit >= COMMIT_EVERY) {
            sinceCommit = 0;
            committer.commit(position);
          }
        });
      });
    } finally {
      await stream.close();
    }
    if (count !== n) throw new Error(`${label}: read ${count} records, expected ${n}`);
    return { seconds: lastAt / 1000, records: count, bytes, firstRecordMs: firstAt };
  } finally {
    // Typed as returning nothing when forced: the callback form is the one the types promise to finish.
    await new Promise<void>((resolve, reject) => consumer.close(true, (err) => (err ? reject(err) : resolve())));
  }
}

// ---------------------------------------------------------------------------------------------

interface Client {
  name: ClientName;
  version: string;
  /** How the producer sends: recorded with each figure. */
  inFlight: number;
  createTopics(bootstrap: string, topics: string[]): Promise<void>;
  endOffsets(bootstrap: string, topic: string): Promise<number>;
  produce(bootstrap: string, topic: string, w: Workload, o: Options, label: string): Promise<Figure>;
  consume(bootstrap: string, topic: string, o: Options, label: string): Promise<Figure>;
}

function packageVersion(name: string): string {
  const require = createRequire(import.meta.url);
  // From the package's entry point up to its package.json (a package's exports may hide it).
  let dir = dirname(require.resolve(name));
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
  }
  return 'unknown';
}

function better(a: Figure | undefined, b: Figure): Figure {
  return !a || b.records / b.seconds > a.records / a.seconds ? b : a;
}

function figureLine(c: Client, op: 'produce' | 'consume', best: Figure, all: Figure[], w: Workload, o: Options): Record<string, unknown> {
  return {
    bench: 'kafka-client',
    client: c.name,
    version: c.version,
    op,
    records: best.records,
    recordsPerSec: round(best.records / best.seconds),
    mbPerSec: round(best.bytes / 1e6 / best.seconds, 2),
    seconds: round(best.seconds, 3),
    ...(op === 'consume'
      ? {
          firstRecordMs: round(best.firstRecordMs ?? 0),
          // The same, without the group join: from the first record to the last.
          recordsPerSecAfterFirst: round(best.records / (best.seconds - (best.firstRecordMs ?? 0) / 1000)),
        }
      : {}),
    runsRecordsPerSec: all.map((f) => round(f.records / f.seconds)),
    avgRecordBytes: round(w.avgRecordBytes, 1),
    ...(op === 'produce'
      ? { acks: -1, idempotent: true, batch: o.batch, inFlight: c.inFlight }
      : { partitions: PARTITIONS, commitEvery: COMMIT_EVERY }),
  };
}

async function run(o: Options, setBroker: (b: KafkaBroker) => void): Promise<void> {
  // Other work on the machine shows in the figures: the 1-minute load before and after says how much.
  const loadBefore = loadavg()[0]!;
  const clients: Client[] = [
    {
      name: 'kafkajs',
      version: packageVersion('kafkajs'),
      inFlight: o.inflight,
      createTopics: kafkajsCreateTopics,
      endOffsets: kafkajsEndOffsets,
      produce: kafkajsProduce,
      consume: kafkajsConsume,
    },
    {
      name: 'platformatic',
      version: packageVersion('@platformatic/kafka'),
      inFlight: 1,
      createTopics: platformaticCreateTopics,
      endOffsets: platformaticEndOffsets,
      produce: platformaticProduce,
      consume: platformaticConsume,
    },
  ];
  const w = buildWorkload();
  log(
    `${o.records.toLocaleString('en')} records (after ${o.warmup.toLocaleString('en')} warm-up) of ${round(w.avgRecordBytes, 1)} bytes (key + value) on average, ${VEHICLES} vehicles, ` +
      `${PARTITIONS} partitions, batch ${o.batch}, ${o.runs} run(s) each; node ${process.version}, ${cpus().length} cores`,
  );
  log('starting the Kafka broker');
  const t = performance.now();
  const broker = await startKafka();
  setBroker(broker);
  log(`broker ready on ${broker.bootstrap} after ${round((performance.now() - t) / 1000, 1)} s`);

  const topic = (c: Client, r: number) => `bench-${c.name}-${r === 0 ? 'warmup' : r}`;
  const first = o.warmup > 0 ? 0 : 1;
  for (const c of clients) {
    const topics = Array.from({ length: o.runs + 1 - first }, (_, r) => topic(c, r + first));
    await within(`${c.name} createTopics`, 60_000, c.createTopics(broker.bootstrap, topics));
    log(`${c.name} ${c.version}: created ${topics.join(', ')} (${PARTITIONS} partitions each)`);
  }
  if (o.warmup > 0) {
    const wo = { ...o, records: o.warmup };
    for (const c of clients) {
      await within(`${c.name} warm-up produce`, 60_000, c.produce(broker.bootstrap, topic(c, 0), w, wo, `warm-up ${c.name} produce`));
      await within(`${c.name} warm-up consume`, 60_000, c.consume(broker.bootstrap, topic(c, 0), wo, `warm-up ${c.name} consume`));
    }
    log(`warm-up done: ${o.warmup.toLocaleString('en')} records produced and consumed by each client`);
  }

  const results = new Map<ClientName, { produce: Figure[]; consume: Figure[] }>(clients.map((c) => [c.name, { produce: [], consume: [] }]));
  // Generous per-step bounds (a stalled client must fail the run, not hang it); the whole run has its own.
  const stepMs = Math.max(60_000, o.records * 2);
  for (let r = 1; r <= o.runs; r++) {
    const order = r % 2 === 1 ? clients : [...clients].reverse();
    for (const c of order) {
      const res = results.get(c.name)!;
      const tp = topic(c, r);
      const p = await within(`${c.name} produce`, stepMs, c.produce(broker.bootstrap, tp, w, o, `run ${r}/${o.runs} ${c.name} produce`));
      const stored = await c.endOffsets(broker.bootstrap, tp);
      if (stored !== o.records) throw new Error(`${c.name} produce: the topic holds ${stored} records, expected ${o.records}`);
      log(
        `run ${r}/${o.runs} ${c.name} produce: ${Math.round(p.records / p.seconds).toLocaleString('en')} rec/s, ${round(p.bytes / 1e6 / p.seconds, 2)} MB/s (${round(p.seconds, 2)} s; ${stored} stored)`,
      );
      res.produce.push(p);
      const k = await within(`${c.name} consume`, stepMs, c.consume(broker.bootstrap, tp, o, `run ${r}/${o.runs} ${c.name} consume`));
      log(
        `run ${r}/${o.runs} ${c.name} consume: ${Math.round(k.records / k.seconds).toLocaleString('en')} rec/s (${round(k.seconds, 2)} s, first record after ${Math.round(k.firstRecordMs ?? 0)} ms)`,
      );
      res.consume.push(k);
    }
  }

  const best = new Map<ClientName, { produce: Figure; consume: Figure }>();
  for (const c of clients) {
    const res = results.get(c.name)!;
    const b = {
      produce: res.produce.reduce<Figure | undefined>(better, undefined)!,
      consume: res.consume.reduce<Figure | undefined>(better, undefined)!,
    };
    best.set(c.name, b);
    out(figureLine(c, 'produce', b.produce, res.produce, w, o));
    out(figureLine(c, 'consume', b.consume, res.consume, w, o));
  }
  const rate = (c: ClientName, op: 'produce' | 'consume') => {
    const f = best.get(c)![op];
    return f.records / f.seconds;
  };
  out({
    bench: 'kafka-client',
    op: 'ratio',
    ratio: 'platformatic/kafkajs',
    produce: round(rate('platformatic', 'produce') / rate('kafkajs', 'produce'), 2),
    consume: round(rate('platformatic', 'consume') / rate('kafkajs', 'consume'), 2),
    records: o.records,
    runs: o.runs,
    warmup: o.warmup,
    node: process.version,
    cores: cpus().length,
    memGb: round(totalmem() / 2 ** 30, 1),
    load1Before: round(loadBefore, 2),
    load1After: round(loadavg()[0]!, 2),
  });
}

async function main(): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) return 0;

  let broker: KafkaBroker | undefined;
  const stopBroker = async () => {
    const b = broker;
    broker = undefined;
    if (!b) return;
    log('stopping the broker');
    await b.stop();
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping`);
      void stopBroker().finally(() => process.exit(130));
    });
  }
  const started = performance.now();
  try {
    await within(
      'the benchmark',
      o.budgetMs,
      run(o, (b) => (broker = b)),
    );
    log(`done in ${round((performance.now() - started) / 1000, 1)} s`);
    return 0;
  } catch (err) {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await stopBroker();
  }
}

// Exits explicitly: a client still reconnecting after a failure must not keep the process alive.
main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`failed: ${err.stack ?? String(err)}`);
    process.exit(1);
  },
);
