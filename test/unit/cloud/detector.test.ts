import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'vitest';
import { pino } from 'pino';
import { Detector } from '../../../cloud/detector.js';
import { detectorConfigSchema } from '../../../cloud/detector-config.js';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import type { SourcedRecord, TelemetrySource } from '../../../cloud/sources/source.js';
import type { Reading } from '../../../shared/contract/reading.js';
import { DEFAULT_RULES } from '../../../shared/rules/default-rules.js';
import { ruleSetSchema } from '../../../shared/rules/rule-set.js';
import { tempDir, waitFor, within } from '../../support/harness.js';
import { storeReadings } from '../../support/store-contract.js';

const dir = tempDir('fleet-detector-unit-');
let n = 0;

/** A source that fails while told to, and is otherwise caught up; it counts the polls. */
class ScriptedSource implements TelemetrySource {
  readonly name = 'scripted';
  polls = 0;
  rewinds = 0;
  failWith?: string;
  /** What the source says of itself on the health endpoint. */
  detail = { ok: true, shardsHeld: 1 };

  async poll(): Promise<SourcedRecord[]> {
    this.polls++;
    if (this.failWith) throw new Error(this.failWith);
    return [];
  }

  async commit(): Promise<void> {}

  async rewind(): Promise<void> {
    this.rewinds++;
  }

  health() {
    return this.detail;
  }

  async close(): Promise<void> {}
}

const running: Detector[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop();
});

function setUp(pollIntervalMs: number) {
  const source = new ScriptedSource();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const detector = new Detector(
    {
      store: new SqliteStore(join(dir, `fleet-${n++}.db`)),
      pollIntervalMs,
      pollMaxRecords: 100,
      channels: [],
      opsHost: '127.0.0.1',
      opsPort: -1,
    },
    DEFAULT_RULES,
    source,
    log,
  );
  const failures = async () =>
    (await detector.registry.getSingleMetric('fleet_detector_poll_failures_total')?.get())?.values[0]?.value ?? 0;
  return { source, detector, lines, failures };
}

describe('the detector while its source fails', () => {
  it('is unhealthy with the error while polls fail, counts each failure, and is healthy again once a poll succeeds', async () => {
    const t = setUp(10);
    t.source.failWith = 'broker unreachable';
    await t.detector.start();
    running.push(t.detector);
    await waitFor('a few failed polls', () => t.source.polls >= 3);
    const health = await t.detector.health();
    assert.equal(health.ok, false);
    assert.equal(health.poll.ok, false);
    assert.equal(health.poll.detail, 'broker unreachable');
    assert.ok((health.poll.failures ?? 0) >= 3, JSON.stringify(health.poll));
    assert.ok(typeof health.poll.since === 'number' && health.poll.since <= Date.now());
    assert.ok((await t.failures()) >= 3, 'fleet_detector_poll_failures_total');
    assert.ok(t.lines.some((l) => l.msg === 'detector poll failed, retrying' && l.err === 'broker unreachable'));

    t.source.failWith = undefined;
    await waitFor('healthy again', async () => (await t.detector.health()).ok);
    assert.deepEqual((await t.detector.health()).poll, { ok: true });
    assert.ok(t.lines.some((l) => l.msg === 'detector polls again'));
  });

  it('asks the source to hand out again what a failed round did not handle, and only then', async () => {
    const t = setUp(10);
    t.source.failWith = 'store locked';
    await t.detector.start();
    running.push(t.detector);
    await waitFor('two failed rounds', () => t.source.polls >= 2);
    t.source.failWith = undefined;
    await waitFor('healthy again', async () => (await t.detector.health()).ok);
    const rewinds = t.source.rewinds;
    assert.ok(rewinds >= 2, `${rewinds} rewinds`);
    const polls = t.source.polls;
    await waitFor('more rounds', () => t.source.polls >= polls + 3);
    assert.equal(t.source.rewinds, rewinds, 'a round that succeeds rewinds nothing');
  });

  it('is unhealthy while its source says it cannot keep its shards, though polls succeed', async () => {
    const t = setUp(10);
    await t.detector.start();
    running.push(t.detector);
    await waitFor('a poll', () => t.source.polls >= 1);
    assert.deepEqual((await t.detector.health()).sourceDetail, { ok: true, shardsHeld: 1 });
    assert.equal((await t.detector.health()).ok, true);
    t.source.detail = { ok: false, shardsHeld: 0 };
    assert.equal((await t.detector.health()).ok, false);
    assert.equal((await t.detector.health()).poll.ok, true);
  });

  it('keeps the time the failures began while they go on', async () => {
    const t = setUp(10);
    t.source.failWith = 'first';
    await t.detector.start();
    running.push(t.detector);
    await waitFor('a failure', async () => (await t.detector.health()).poll.failures === 1 || undefined);
    const since = (await t.detector.health()).poll.since;
    t.source.failWith = 'second';
    await waitFor('the next error', async () => (await t.detector.health()).poll.detail === 'second');
    assert.equal((await t.detector.health()).poll.since, since);
  });

  it('is healthy from the start when its polls succeed', async () => {
    const t = setUp(10);
    await t.detector.start();
    running.push(t.detector);
    await waitFor('a poll', () => t.source.polls >= 1);
    assert.equal((await t.detector.health()).ok, true);
    assert.equal(await t.failures(), 0);
  });
});

describe('stopping the detector', () => {
  it('returns promptly while it waits between polls, and polls no more', async () => {
    const t = setUp(60_000);
    await t.detector.start();
    await waitFor('the first poll', () => t.source.polls === 1);
    await within('stop', t.detector.stop(), 5_000);
    assert.equal(t.source.polls, 1);
  });
});

describe('the detector with readingsRetentionDays', () => {
  it('drops stored readings older than the limit on start (and hourly), keeps recent ones, and counts what went', async () => {
    const store = new SqliteStore(join(dir, `fleet-${n++}.db`));
    const now = Date.now();
    const r = (seq: number, ts: number) => ({
      vehicle: 'truck-1',
      seq,
      ts,
      clock: 'synced' as const,
      sensor: 'speed' as const,
      value: 1,
      quality: 'good' as const,
    });
    await storeReadings(store, [r(1, now - 10 * 86_400_000), r(2, now - 8 * 86_400_000), r(3, now - 86_400_000), r(4, now)], now);
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const detector = new Detector(
      { store, pollIntervalMs: 10, pollMaxRecords: 100, channels: [], opsHost: '127.0.0.1', opsPort: -1, readingsRetentionDays: 7 },
      DEFAULT_RULES,
      new ScriptedSource(),
      log,
    );
    await detector.start();
    running.push(detector);
    await waitFor('old readings dropped', () => lines.find((l) => l.msg === 'old readings dropped'));
    assert.equal((await store.counts()).readingsStored, 2);
    assert.deepEqual(
      (await store.readingSeries('truck-1', 'speed', 0)).map((x) => x.ts),
      [now - 86_400_000, now],
    );
    const expired = (await detector.registry.getSingleMetric('fleet_detector_readings_expired_total')?.get())?.values[0]?.value;
    assert.equal(expired, 2);
    assert.ok(
      lines.some((l) => l.msg === 'old readings dropped' && l.dropped === 2 && l.retentionDays === 7),
      'logged with the count',
    );
  });

  it('takes a SQLite path or a PostgreSQL URL with a host as its store, and says what a bad one lacks', () => {
    assert.equal(detectorConfigSchema.parse({ store: 'postgres://fleet@db:5432/fleet' }).store, 'postgres://fleet@db:5432/fleet');
    assert.equal(detectorConfigSchema.parse({ store: '/var/lib/fleet/fleet.db' }).store, '/var/lib/fleet/fleet.db');
    for (const bad of ['postgres://', 'postgresql:fleet', '']) {
      const result = detectorConfigSchema.safeParse({ store: bad });
      assert.equal(result.success, false, bad);
      assert.deepEqual(result.error?.issues[0]?.path, ['store']);
    }
    assert.match(detectorConfigSchema.safeParse({ store: 'postgres://' }).error!.issues[0]!.message, /URL with a host/);
  });

  it('is validated: a whole number of days, at least 1', () => {
    for (const bad of [0, -1, 1.5, 'soon']) {
      const result = detectorConfigSchema.safeParse({ readingsRetentionDays: bad });
      assert.equal(result.success, false, String(bad));
      assert.deepEqual(result.error?.issues[0]?.path, ['readingsRetentionDays']);
    }
    assert.equal(detectorConfigSchema.parse({ readingsRetentionDays: '30' }).readingsRetentionDays, 30);
    assert.equal(detectorConfigSchema.parse({}).readingsRetentionDays, 90, 'bounded unless told otherwise');
  });
});

describe('two detectors sharing a stream and a store', () => {
  const rules = ruleSetSchema.parse({
    windowMs: 2000,
    rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
  });
  const T0 = Date.now() - 60_000;
  /** One reading of engine_temp a second: seq n at T0 + n s, overheating from seq `hotFrom` on. */
  const records = (from: number, to: number, hotFrom: number, rebuild = false): SourcedRecord[] =>
    Array.from({ length: to - from + 1 }, (_, i) => {
      const seq = from + i;
      const ts = T0 + seq * 1000;
      const reading: Reading = {
        vehicle: 'v1',
        seq,
        ts,
        clock: 'synced',
        sensor: 'engine_temp',
        value: seq >= hotFrom ? 112 : 90,
        quality: 'good',
      };
      return { offset: seq, vehicle: 'v1', receivedAt: ts + 50, batch: { vehicle: 'v1', headTs: ts, readings: [reading] }, rebuild };
    });
  const detectorOn = (store: string, source: TelemetrySource) =>
    new Detector(
      { store: new SqliteStore(store), pollIntervalMs: 10, pollMaxRecords: 100, channels: [], opsHost: '127.0.0.1', opsPort: -1 },
      rules,
      source,
      pino({ level: 'silent' }),
    );

  it('continues, neither clears nor raises again, an episode the other raised while it held the vehicle unknowingly', async () => {
    const store = join(dir, `shared-${n++}.db`);
    // Each source's share of the stream as a consumer group hands it out.
    const a = Object.assign(new ScriptedSource(), { assignments: 1 });
    const b = Object.assign(new ScriptedSource(), { assignments: 1 });
    const first = detectorOn(store, a);
    const second = detectorOn(store, b);
    await first.store.open();
    await second.store.open();
    try {
      // The first holds v1 while it is normal, then is cut off; the second takes it and raises its overheat.
      await first.handle(records(1, 10, 15));
      const byTheSecond = (await second.handle(records(11, 20, 15))).filter((e) => e.kind === 'raised');
      assert.equal(byTheSecond.length, 1);
      const raised = (await second.store.openAlerts(['v1']))[0]!;
      // Back on the network, the first gets v1 again: a new assignment, the partition re-read from
      // before the episode began (the windows its alert covers were judged by the second already).
      a.assignments = 2;
      const events = await first.handle([...records(1, 20, 15, true), ...records(21, 30, 15)]);
      assert.deepEqual(
        events.map((e) => e.kind),
        [],
        `the episode ${raised.id} goes on: not cleared by the windows re-read, not raised a second time`,
      );
      assert.deepEqual(
        (await first.store.openAlerts(['v1'])).map((x) => x.id),
        [raised.id],
      );
    } finally {
      await first.store.close();
      await second.store.close();
    }
  });
});
