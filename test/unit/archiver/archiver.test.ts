import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'vitest';
import type { ArchiveStore, StoredObject } from '../../../cloud/archive/object-store.js';
import { headKey } from '../../../cloud/archiver/archive-keys.js';
import { Archiver, type ArchiverOptions } from '../../../cloud/archiver/archiver.js';
import type { PositionedRecord, PositionedSource } from '../../../cloud/sources/source.js';
import type { Reading } from '../../../shared/contract/reading.js';
import { createLogger } from '../../../shared/log.js';
import { tempDir } from '../../support/harness.js';
import type { ReceivedReading } from '../../../cloud/store.js';

const H = Date.UTC(2026, 10, 30, 8);
const log = createLogger('archiver-test', { level: 'silent' });

/** An archive in memory, whole-or-absent like the real ones. */
class MemoryStore implements ArchiveStore {
  readonly location = 'memory://';
  readonly objects = new Map<string, Buffer>();
  puts = 0;
  async putFile(key: string, localPath: string): Promise<void> {
    await this.put(key, await readFile(localPath));
  }
  put(key: string, body: Buffer): Promise<void> {
    this.puts++;
    this.objects.set(key, body);
    return Promise.resolve();
  }
  putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    if (this.objects.has(key)) return Promise.resolve(false);
    this.objects.set(key, body);
    return Promise.resolve(true);
  }
  get(key: string): Promise<Buffer | undefined> {
    return Promise.resolve(this.objects.get(key));
  }
  async download(key: string, localPath: string): Promise<void> {
    await writeFile(localPath, this.objects.get(key)!);
  }
  async *list(prefix: string): AsyncIterable<StoredObject> {
    for (const key of [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort())
      yield await Promise.resolve({ key, size: this.objects.get(key)!.length, version: '1' });
  }
  delete(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }
  /** The data files and their rows. */
  data(): Map<string, ReceivedReading[]> {
    return new Map(
      [...this.objects]
        .filter(([k]) => !k.startsWith('_fleet_archive/'))
        .map(([k, v]) => [k, JSON.parse(v.toString('utf8')) as ReceivedReading[]]),
    );
  }
}

class KilledError extends Error {}

/**
 * The stream: records of several lanes, handed out in order from after each lane's commit. A
 * kill after `commitsBeforeKill` commits stands for a SIGKILL between a head and its commit.
 */
class ListSource implements PositionedSource {
  readonly name = 'list';
  private next = 0;
  private readonly pending: PositionedRecord[];
  constructor(
    records: PositionedRecord[],
    readonly committed = new Map<string, string>(),
    private commitsBeforeKill = Infinity,
  ) {
    this.pending = records.filter((r) => BigInt(r.position) > BigInt(committed.get(r.lane) ?? -1));
  }
  poll(max: number): Promise<PositionedRecord[]> {
    const out = this.pending.slice(this.next, this.next + max);
    this.next += out.length;
    return Promise.resolve(out);
  }
  commit(r: PositionedRecord): Promise<void> {
    return this.commitLane(r);
  }
  commitLane(r: PositionedRecord): Promise<void> {
    if (this.commitsBeforeKill-- <= 0) throw new KilledError('killed');
    // As Kafka's and Kinesis' sources do: a commit never moves back.
    if (BigInt(r.position) > BigInt(this.committed.get(r.lane) ?? -1)) this.committed.set(r.lane, r.position);
    return Promise.resolve();
  }
  behind(): Promise<Map<string, number>> {
    const behind = new Map<string, number>();
    for (const r of this.pending)
      behind.set(r.lane, (behind.get(r.lane) ?? 0) + (BigInt(r.position) > BigInt(this.committed.get(r.lane) ?? -1) ? 1 : 0));
    return Promise.resolve(behind);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const reading = (vehicle: string, seq: number): Reading => ({
  vehicle,
  seq,
  // Two hours of event time, so segments span hour directories.
  ts: H + seq * 60_000,
  clock: 'synced',
  sensor: 'engine_temp',
  value: seq,
  quality: 'good',
});

/** Two lanes, two vehicles each, positions that jump like Kinesis sequence numbers; every 7th batch is sent twice. */
function stream(batches = 60): PositionedRecord[] {
  const out: PositionedRecord[] = [];
  const seqs = new Map<string, number>();
  let position = 1000;
  for (let i = 0; i < batches; i++) {
    const lane = String(i % 2);
    const vehicle = `truck-${lane}-${(i >> 1) % 2}`;
    const from = (seqs.get(vehicle) ?? 0) + 1;
    const readings = [reading(vehicle, from), reading(vehicle, from + 1)];
    seqs.set(vehicle, from + 1);
    const push = () => {
      position += 7;
      out.push({
        vehicle,
        receivedAt: H + i * 1000,
        batch: { vehicle, headTs: readings[1]!.ts, readings },
        offset: out.length + 1,
        rebuild: false,
        lane,
        position: String(position),
        size: 100,
      });
    };
    push();
    if (i % 7 === 3) push();
  }
  return out;
}

const distinct = (records: PositionedRecord[]) => new Set(records.flatMap((r) => r.batch.readings.map((x) => `${x.vehicle}:${x.seq}`)));

function archiver(store: ArchiveStore, source: PositionedSource, o: Partial<ArchiverOptions> = {}): Archiver {
  return new Archiver(
    {
      source,
      store,
      streamName: 'fleet.telemetry',
      stagingDir: tempDir('archiver-staging-'),
      flushBytes: 1000,
      flushAgeMs: 3_600_000,
      stagingMaxBytes: 1_000_000,
      partitionBy: 'event',
      writeFile: (rows, path) => writeFile(path, JSON.stringify(rows)),
      pollIntervalMs: 1,
      pollMaxRecords: 5,
      opsHost: '127.0.0.1',
      opsPort: -1,
      ...o,
    },
    log,
  );
}

/** Every archived (vehicle, seq) with how many times it is there. */
function archived(store: MemoryStore): Map<string, number> {
  const counts = new Map<string, number>();
  for (const rows of store.data().values())
    for (const { reading: r } of rows) counts.set(`${r.vehicle}:${r.seq}`, (counts.get(`${r.vehicle}:${r.seq}`) ?? 0) + 1);
  return counts;
}

function assertExactlyOnce(store: MemoryStore, records: PositionedRecord[]): void {
  const counts = archived(store);
  assert.deepEqual(new Set(counts.keys()), distinct(records));
  assert.deepEqual(
    [...counts.values()].filter((n) => n !== 1),
    [],
  );
}

/** Keys and contents, for comparing two archives. */
const snapshot = (store: MemoryStore) => new Map([...store.objects].map(([k, v]) => [k, v.toString('utf8')]));

describe('the archiver', () => {
  it('writes every distinct reading once, per lane segment and event-time hour, and drops the repeats', async () => {
    const records = stream();
    const store = new MemoryStore();
    const a = archiver(store, new ListSource(records));
    await a.drain();
    assertExactlyOnce(store, records);
    // Every seventh batch was sent twice, two readings each.
    assert.equal(a.totals.duplicates, 2 * Math.ceil((60 - 3) / 7));
    for (const key of store.data().keys()) assert.match(key, /^dt=2026-11-30\/hour=(08|09|10)\/part-[01]-\d+-\d+\.parquet$/);
    assert.ok(store.objects.has(headKey('fleet.telemetry', '0')));
    assert.ok(store.objects.has('_fleet_archive/fleet.telemetry/cutover.json'));
  });

  for (const [what, flushBytes] of [
    ['earlier', 3000],
    ['later', 400],
  ] as const) {
    it(`replays into the same objects when the written cuts fall ${what} than its own flush would`, async () => {
      const records = stream();
      const first = new MemoryStore();
      await archiver(first, new ListSource(records)).drain();
      // As if every head were lost: the next archiver reads the lanes from the start.
      const replay = new MemoryStore();
      for (const [k, v] of first.objects) if (!k.endsWith('head.json')) replay.objects.set(k, v);
      const again = archiver(replay, new ListSource(records), { flushBytes });
      await again.drain();
      assert.deepEqual(snapshot(replay), snapshot(first));
      assert.equal(again.totals.replayed, again.totals.segments);
    });
  }

  it('skips what the heads say is archived when the commit lagged them, writing nothing again', async () => {
    const records = stream();
    const store = new MemoryStore();
    await archiver(store, new ListSource(records)).drain();
    const puts = store.puts;
    const source = new ListSource(records);
    const again = archiver(store, source);
    await again.drain();
    assert.equal(store.puts, puts);
    assert.equal(again.totals.skipped, records.length);
    assert.deepEqual(source.committed, new Map(['0', '1'].map((l) => [l, records.filter((r) => r.lane === l).at(-1)!.position])));
  });

  it('archives exactly once across kills between a head and its commit, at whatever cuts', async () => {
    const records = stream(120);
    const store = new MemoryStore();
    let committed = new Map<string, string>();
    for (let kill = 1; ; kill++) {
      const source = new ListSource(records, new Map(committed), kill % 3);
      try {
        await archiver(store, source, { flushBytes: 300 + 250 * (kill % 4) }).drain();
        break;
      } catch (err) {
        assert.ok(err instanceof KilledError);
      }
      committed = source.committed;
    }
    assertExactlyOnce(store, records);
  });

  it('writes one set of objects when two archivers hold the same lanes at once', async () => {
    const records = stream(120);
    const store = new MemoryStore();
    const a = archiver(store, new ListSource(records), { flushBytes: 500 });
    const b = archiver(store, new ListSource(records), { flushBytes: 1300 });
    await Promise.all([a.drain(), b.drain()]);
    assertExactlyOnce(store, records);
    assert.ok(a.totals.replayed + b.totals.replayed > 0);
  });

  it('only rewrites the same objects after a zombie wrote an older head', async () => {
    const records = stream();
    const store = new MemoryStore();
    await archiver(store, new ListSource(records), { flushBytes: 500 }).drain();
    const before = snapshot(store);
    const head = JSON.parse(store.objects.get(headKey('fleet.telemetry', '0'))!.toString()) as object;
    // The head as it stood after the lane's first segment.
    const firstIntent = JSON.parse(store.objects.get('_fleet_archive/fleet.telemetry/0/segments/start.json')!.toString()) as {
      last: string;
      after: object;
    };
    store.objects.set(
      headKey('fleet.telemetry', '0'),
      Buffer.from(JSON.stringify({ ...head, after: firstIntent.last, dedupe: firstIntent.after })),
    );
    await archiver(store, new ListSource(records), { flushBytes: 2000 }).drain();
    assert.deepEqual(snapshot(store), before);
  });

  it('catches up along the intents when its source moves past segments another archiver wrote meanwhile', async () => {
    const records = stream(80).filter((r) => r.lane === '0');
    const store = new MemoryStore();
    // This archiver stages the lane's first record, then its source fails (a network cut).
    const stalled = new ListSource(records);
    let polls = 0;
    Object.assign(stalled, { poll: () => (polls++ === 0 ? Promise.resolve(records.slice(0, 1)) : Promise.reject(new Error('cut off'))) });
    const late = archiver(store, stalled, { flushBytes: 1000 });
    await assert.rejects(late.drain(), /cut off/);
    // Meanwhile another archives the whole lane.
    await archiver(store, new ListSource(records), { flushBytes: 1000 }).drain();
    const before = snapshot(store);
    const start = JSON.parse(store.objects.get('_fleet_archive/fleet.telemetry/0/segments/start.json')!.toString()) as { last: string };
    const second = JSON.parse(store.objects.get(`_fleet_archive/fleet.telemetry/0/segments/${start.last}.json`)!.toString()) as {
      last: string;
    };
    // The stalled archiver's source comes back reading from the other's commit at its second cut.
    const resumed = new ListSource(records, new Map([['0', second.last]]));
    Object.assign(stalled, { poll: (max: number) => resumed.poll(max) });
    await late.drain();
    assert.equal(late.totals.replayed, late.totals.segments, 'the rest of the lane rewritten at the cuts already written');
    assert.deepEqual(snapshot(store), before);
    assertExactlyOnce(store, records);
  });

  it('follows the head when it wakes from a stall longer than the intents behind the head are kept', async () => {
    const records = stream(400).filter((r) => r.lane === '0');
    const store = new MemoryStore();
    // This archiver stages the lane's first records, then stalls (a zombie) with its source still on the lane.
    const zombieSource = new ListSource(records);
    const zombie = archiver(store, zombieSource, { flushBytes: 1_000_000 });
    let polls = 0;
    const poll = zombieSource.poll.bind(zombieSource);
    Object.assign(zombieSource, { poll: (max: number) => (polls++ === 0 ? poll(max) : Promise.reject(new Error('stalled'))) });
    await assert.rejects(zombie.drain(), /stalled/);
    // Meanwhile another archives the lane a record a segment, past the intents kept.
    await archiver(store, new ListSource(records), { flushBytes: 100 }).drain();
    assert.ok(![...store.objects.keys()].some((k) => k.endsWith('/segments/start.json')), 'the first intents are pruned');
    const before = snapshot(store);
    // The zombie wakes, its source going on where it was.
    Object.assign(zombieSource, { poll });
    await zombie.drain();
    assert.deepEqual(snapshot(store), before);
    assertExactlyOnce(store, records);
  });

  it('loses nothing and repeats nothing when the archive fails now and then, each round retried', async () => {
    const records = stream(120);
    const store = new MemoryStore();
    let calls = 0;
    const flaky =
      <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> =>
        ++calls % 7 === 0 ? Promise.reject(new Error('503 Slow Down')) : f(...a);
    const failing: ArchiveStore = {
      location: store.location,
      putFile: flaky((k: string, p: string) => store.putFile(k, p)),
      put: flaky((k: string, b: Buffer) => store.put(k, b)),
      putIfAbsent: flaky((k: string, b: Buffer) => store.putIfAbsent(k, b)),
      get: flaky((k: string) => store.get(k)),
      download: (k, p) => store.download(k, p),
      list: (p) => store.list(p),
      delete: (k) => store.delete(k),
    };
    const a = archiver(failing, new ListSource(records), { flushBytes: 400 });
    let failures = 0;
    for (;;) {
      try {
        await a.drain();
        break;
      } catch (err) {
        assert.match((err as Error).message, /Slow Down/);
        failures++;
      }
    }
    assert.ok(failures > 3);
    assertExactlyOnce(store, records);
  });

  it('cuts the biggest lane early when the staging total is reached', async () => {
    const records = stream();
    const store = new MemoryStore();
    const a = archiver(store, new ListSource(records), { flushBytes: 1_000_000, stagingMaxBytes: 800 });
    await a.drain();
    assert.ok(a.totals.segments > 4, `cut by the total: ${a.totals.segments} segments`);
    assertExactlyOnce(store, records);
  });
});
