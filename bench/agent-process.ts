/**
 * The agent's buffer and publisher in a process of their own, for bench/agent.ts: one core
 * (the parent pins it), their throughput without the rest of the agent. One phase per run:
 *  - sustained: commit samples in groups as the agent does, publish from the buffer, delete
 *    on PUBACK, for --seconds; the buffer's backlog is capped so the rate is what all three keep up;
 *  - fill: commit --readings samples with no connection (the backlog a dead zone leaves);
 *  - restart: open that buffer, connect, drain it with the agent's own limit of --publish-rate publishes/s.
 * stdout: JSON lines ({event, ...}); the parent reads them.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ReadingBuffer } from '../agent/buffer.js';
import { AgentLink, type LinkOptions } from '../agent/link.js';
import { Publisher } from '../agent/publisher.js';
import type { Sample } from '../shared/contract/reading.js';
import { createLogger, type Logger } from '../shared/log.js';
import { MB, round, truckReadings } from './support.js';
import { gatewayAddresses } from '../shared/gateway-urls.js';

const VEHICLE = 'bench-truck';
/** Samples per commit: the agent commits every 50 ms, so 1,000 is 20,000 readings/s. */
const COMMIT_GROUP = 1_000;
/** The sustained phase stops committing while this many readings wait for a PUBACK. */
const MAX_BACKLOG = 20_000;

const out = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...fields })}\n`);
const rssMb = () => round(process.memoryUsage.rss() / MB, 1);
/** Where the RSS goes: V8's heap (used and reserved) and memory outside it (SQLite, buffers). */
const memory = () => {
  const m = process.memoryUsage();
  return { heapUsedMb: round(m.heapUsed / MB, 1), heapTotalMb: round(m.heapTotal / MB, 1), externalMb: round(m.external / MB, 1) };
};

/** The agent's link, counting what it publishes. */
class CountingLink extends AgentLink {
  publishes = 0;

  constructor(opts: LinkOptions, log: Logger) {
    super(opts, log, () => ({}));
  }

  override publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    this.publishes++;
    super.publish(topic, payload, done);
  }
}

function samples(count: number): Sample[] {
  return truckReadings(VEHICLE, count, Date.now() - 3_600_000).map(({ vehicle: _v, seq: _s, ...sample }) => sample);
}

function agentParts(path: string, url: string, batch: number, publishRate: number, log: Logger) {
  const buffer = new ReadingBuffer({ path, vehicle: VEHICLE, maxBytes: 1024 * MB, synchronous: 'FULL' });
  const link = new CountingLink(
    { gateways: gatewayAddresses(url), vehicle: VEHICLE, keepaliveS: 30, reconnectBaseMs: 500, reconnectMaxMs: 5_000, maxInflight: 8 },
    log,
  );
  // The agent's own publish limit (0: none), as `maxPublishesPerSecond` sets it.
  const publisher = new Publisher(
    {
      vehicle: VEHICLE,
      batchMaxReadings: batch,
      lingerMs: 200,
      maxInflight: 8,
      maxPublishesPerSecond: publishRate,
      encoding: { encoding: 'binary', compress: false },
      holdUnsynced: () => false,
    },
    buffer,
    link,
    log,
  );
  return { buffer, link, publisher };
}

async function sustained(path: string, url: string, seconds: number, batch: number, log: Logger): Promise<void> {
  const { buffer, link, publisher } = agentParts(path, url, batch, 0, log);
  let acked = 0;
  publisher.onAck = (n) => (acked += n);
  link.start();
  await new Promise<void>((resolve) => link.once('up', () => resolve()));
  // One commit's worth, sent over and over: a larger pool would count in the agent's RSS.
  const pool = samples(COMMIT_GROUP);
  let committed = 0;
  let rssMax = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    if (buffer.stats().readings < MAX_BACKLOG) {
      buffer.append(pool);
      committed += pool.length;
      publisher.notify();
    }
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
    await new Promise((r) => setImmediate(r));
  }
  const elapsed = (performance.now() - t0) / 1000;
  out('sustained', {
    committed,
    acked,
    seconds: elapsed,
    publishes: link.publishes,
    rssMb: rssMb(),
    rssMaxMb: round(rssMax / MB, 1),
    ...memory(),
  });
  publisher.stop();
  await link.stop();
  buffer.close();
}

function fill(path: string, readings: number): void {
  const buffer = new ReadingBuffer({ path, vehicle: VEHICLE, maxBytes: 1024 * MB, synchronous: 'FULL' });
  const pool = samples(10_000);
  for (let n = 0; n < readings; n += pool.length) buffer.append(pool.slice(0, Math.min(pool.length, readings - n)));
  out('filled', { readings: buffer.stats().readings });
  buffer.close();
}

async function restart(path: string, url: string, seconds: number, batch: number, publishRate: number, log: Logger): Promise<void> {
  const { buffer, link, publisher } = agentParts(path, url, batch, publishRate, log);
  let acked = 0;
  let firstAckAt = 0;
  let rssMax = 0;
  publisher.onAck = (n) => {
    if (acked === 0) firstAckAt = performance.now();
    acked += n;
  };
  link.start();
  publisher.notify();
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 200);
  const deadline = performance.now() + 60_000 + seconds * 1000;
  while (firstAckAt === 0 || (performance.now() < firstAckAt + seconds * 1000 && buffer.stats().readings > 0)) {
    if (performance.now() > deadline) throw new Error('the backlog did not start draining');
    await new Promise((r) => setTimeout(r, 20));
  }
  const elapsed = (performance.now() - firstAckAt) / 1000;
  clearInterval(sampler);
  out('drained', {
    acked,
    seconds: elapsed,
    publishes: link.publishes,
    left: buffer.stats().readings,
    rssMb: rssMb(),
    rssMaxMb: round(rssMax / MB, 1),
    ...memory(),
  });
  publisher.stop();
  await link.stop();
  buffer.close();
}

const { values } = parseArgs({
  options: {
    phase: { type: 'string' },
    buffer: { type: 'string' },
    url: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    readings: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '500' },
    'publish-rate': { type: 'string', default: '100' },
  },
  strict: true,
});
const log = createLogger('bench-agent', { level: 'silent' });
const path = values.buffer!;
const phases: Record<string, () => Promise<void> | void> = {
  sustained: () => sustained(path, values.url!, Number(values.seconds), Number(values.batch), log),
  fill: () => fill(path, Number(values.readings)),
  restart: () => restart(path, values.url!, Number(values.seconds), Number(values.batch), Number(values['publish-rate']), log),
};
const phase = phases[values.phase ?? ''];
if (!phase) {
  process.stderr.write(`--phase must be one of ${Object.keys(phases).join(', ')}\n`);
  process.exit(2);
}
Promise.resolve(phase()).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`agent-process ${values.phase}: ${err.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
