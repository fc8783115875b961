import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, it, vi } from 'vitest';
import { pino } from 'pino';
import { ReadingBuffer } from '../../../agent/buffer.js';
import type { AgentLink } from '../../../agent/link.js';
import { MAX_LOSSES_PER_BATCH, Publisher, type PublisherOptions } from '../../../agent/publisher.js';
import { decodeBatch } from '../../../shared/contract/codec.js';
import { tempDir } from '../../support/harness.js';

const V = 'truck-1';
const dir = tempDir('fleet-publisher-test-');
const buffers: ReadingBuffer[] = [];
afterAll(() => buffers.forEach((b) => b.close()));

/**
 * A link that answers each publish on the next turn of the event loop: `answer` says whether
 * the batch is acknowledged or the link is lost over it (and comes straight back). As with a
 * real connection, a lost link answers nothing more that was sent on it.
 */
class FakeLink extends EventEmitter {
  connected = false;
  /** Each batch sent, with the publisher's own count of batches in flight at that moment. */
  readonly sent: { first: number; last: number; inflight: number }[] = [];
  inflightNow: () => number = () => 0;
  private connection = 0;

  constructor(private readonly answer: (first: number) => 'ack' | 'lose') {
    super();
  }

  up(): void {
    this.connected = true;
    this.connection++;
    this.emit('up');
  }

  publish(_topic: string, payload: Buffer, done: (err?: Error) => void): void {
    const seqs = decodeBatch(V, payload).readings.map((r) => r.seq);
    this.sent.push({ first: seqs[0]!, last: seqs.at(-1)!, inflight: this.inflightNow() });
    const on = this.connection;
    setImmediate(() => {
      if (on !== this.connection || !this.connected) return;
      if (this.answer(seqs[0]!) === 'ack') return done();
      this.connected = false;
      this.emit('down');
      setImmediate(() => this.up());
    });
  }
}

function setUp(answer: (first: number) => 'ack' | 'lose', readings: number) {
  const buffer = new ReadingBuffer({ path: join(dir, `${buffers.length}.db`), vehicle: V, maxBytes: 1 << 30, synchronous: 'NORMAL' });
  buffers.push(buffer);
  const add = (n: number) =>
    buffer.append(
      Array.from({ length: n }, (_, i) => ({
        ts: Date.now() + i,
        clock: 'synced' as const,
        sensor: 'engine_temp' as const,
        value: 90,
        quality: 'good' as const,
      })),
    );
  add(readings);
  const link = new FakeLink(answer);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const publisher = new Publisher(
    { vehicle: V, batchMaxReadings: 10, lingerMs: 0, maxInflight: 4, encoding: { encoding: 'binary' }, holdUnsynced: () => false },
    buffer,
    link as unknown as AgentLink,
    log,
  );
  link.inflightNow = () => publisher.inflightCount();
  const setAside: number[] = [];
  const rejections: string[] = [];
  publisher.onSetAside = (n) => setAside.push(n);
  publisher.onRejection = (reason) => rejections.push(reason);
  return { buffer, link, publisher, lines, setAside, rejections, add };
}

/** Lets the fake link's answers and the publisher's reactions run until nothing is left to do. */
async function settled(): Promise<void> {
  for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
}

describe('the publisher and batches that never get through', () => {
  it(`sets aside a batch the link is lost over ${MAX_LOSSES_PER_BATCH} times running, keeps it buffered, and sends what follows`, async () => {
    const t = setUp((first) => (first === 11 ? 'lose' : 'ack'), 30);
    t.link.up();
    await settled();
    const poison = t.link.sent.filter((s) => s.first === 11);
    // Once with others in flight, then alone until it is set aside.
    assert.equal(poison.length, 1 + MAX_LOSSES_PER_BATCH);
    assert.ok(
      poison.slice(1).every((s) => s.inflight === 1),
      'alone in flight, so the loss is its own',
    );
    assert.deepEqual(t.setAside, [10]);
    assert.deepEqual(t.publisher.setAsideCount(), { batches: 1, readings: 10 });
    assert.deepEqual(
      t.buffer.after(0, 100).map((r) => r.seq),
      [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
      'still in the buffer, nothing else is',
    );
    const logged = t.lines.find(
      (l) => l.msg === 'batch set aside: the link was lost each time it was sent; it stays in the buffer, unsent until the agent restarts',
    );
    assert.deepEqual({ first: logged?.first, last: logged?.last, readings: logged?.readings }, { first: 11, last: 20, readings: 10 });
    // What comes after goes on as usual.
    t.add(5);
    t.publisher.notify();
    await settled();
    assert.deepEqual(t.link.sent.at(-1), { first: 31, last: 35, inflight: 1 });
    assert.deepEqual(t.buffer.after(20, 100), []);
  });

  it('after a loss with several batches in flight, sends one at a time until one is acknowledged, then as many as allowed', async () => {
    let lost = false;
    const t = setUp((first) => {
      if (first !== 21 || lost) return 'ack';
      lost = true;
      return 'lose';
    }, 100);
    t.link.up();
    await settled();
    const resent = t.link.sent.map((s) => s.first).lastIndexOf(21);
    assert.ok(t.link.sent[resent - 1]!.inflight > 1, 'several in flight when the link was lost');
    assert.equal(t.link.sent[resent]!.inflight, 1, 'then one at a time');
    assert.equal(t.link.sent[resent + 1]!.inflight, 1, 'the next only once that one was acknowledged');
    assert.ok(
      t.link.sent.slice(resent + 1).some((s) => s.inflight > 1),
      'several again once one was acknowledged',
    );
    assert.deepEqual(t.setAside, []);
    assert.deepEqual(t.buffer.after(0, 1000), [], 'everything acknowledged');
  });

  it("logs and counts the gateway's rejection notices", async () => {
    const t = setUp(() => 'ack', 0);
    t.link.emit(
      'rejected',
      Buffer.from(
        JSON.stringify({
          reason: 'oversize',
          detail: 'payload of 300000 bytes exceeds the limit of 262144',
          topic: 'fleet/v1/truck-1/telemetry',
          at: 1,
        }),
      ),
    );
    t.link.emit('rejected', Buffer.from('not json'));
    assert.deepEqual(t.rejections, ['oversize']);
    assert.deepEqual(
      t.lines.map((l) => [l.msg, l.reason]),
      [
        ['the gateway refused a payload', 'oversize'],
        ['unreadable rejection notice from the gateway', undefined],
      ],
    );
  });
});

/**
 * A link whose answers the test gives: each publish waits until the test acknowledges it,
 * fails it (the session dropped it) or drops the link. As with a real connection, a lost
 * link answers nothing more that was sent on it.
 */
class ManualLink extends EventEmitter {
  connected = false;
  readonly sent: { first: number; last: number; headTs: number; done: (err?: Error) => void }[] = [];

  up(): void {
    this.connected = true;
    this.emit('up');
  }

  /** The link is lost: what was sent on it is never answered. */
  drop(): void {
    this.connected = false;
    this.sent.length = 0;
    this.emit('down');
  }

  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    assert.equal(topic, 'fleet/v1/truck-1/telemetry');
    const batch = decodeBatch(V, payload);
    this.sent.push({ first: batch.readings[0]!.seq, last: batch.readings.at(-1)!.seq, headTs: batch.headTs, done });
  }

  /** Batches still waiting for an answer, as seq ranges. */
  waiting(): [number, number][] {
    return this.sent.map((s) => [s.first, s.last]);
  }

  /** Answers the waiting batch that starts at `first`. */
  answer(first: number, err?: Error): void {
    const i = this.sent.findIndex((s) => s.first === first);
    assert.ok(i >= 0, `batch from ${first} is waiting`);
    const [s] = this.sent.splice(i, 1);
    s!.done(err);
  }
}

const T0 = Date.UTC(2025, 5, 1, 8);

function manual(opts: Partial<PublisherOptions> = {}) {
  const buffer = new ReadingBuffer({ path: join(dir, `${buffers.length}.db`), vehicle: V, maxBytes: 1 << 30, synchronous: 'NORMAL' });
  buffers.push(buffer);
  const add = (n: number, unsynced = false) =>
    buffer.append(
      Array.from({ length: n }, (_, i) => ({
        ts: T0 + buffer.stats().nextSeq * 1000 + i * 1000,
        clock: unsynced ? ('unsynced' as const) : ('synced' as const),
        sensor: 'engine_temp' as const,
        value: 90,
        quality: 'good' as const,
        ...(unsynced ? { unsynced: { mono: 1000 + i, boot: 'boot-1' } } : {}),
      })),
    );
  const link = new ManualLink();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const publisher = new Publisher(
    {
      vehicle: V,
      batchMaxReadings: 10,
      lingerMs: 200,
      maxInflight: 3,
      encoding: { encoding: 'binary' },
      holdUnsynced: () => false,
      ...opts,
    },
    buffer,
    link as unknown as AgentLink,
    log,
  );
  const acked: number[] = [];
  publisher.onAck = (readings) => acked.push(readings);
  const buffered = () => buffer.after(0, 1000).map((r) => r.seq);
  return { buffer, add, link, publisher, lines, acked, buffered };
}

const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('the publisher: at least once, in order', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 + 3_600_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends full batches in seq order, at most maxInflight at a time, and nothing while the link is down', () => {
    const t = manual();
    t.add(45);
    t.publisher.notify();
    assert.deepEqual(t.link.waiting(), [], 'nothing sent before the link is up');
    t.link.up();
    assert.deepEqual(t.link.waiting(), [
      [1, 10],
      [11, 20],
      [21, 30],
    ]);
    assert.equal(t.publisher.inflightCount(), 3);
    t.link.answer(1);
    assert.deepEqual(
      t.link.waiting(),
      [
        [11, 20],
        [21, 30],
        [31, 40],
      ],
      'the next batch goes as soon as one is acknowledged',
    );
  });

  it('carries the newest buffered event time as headTs, so a backlog shows how far behind it is', () => {
    const t = manual();
    t.add(25);
    t.link.up();
    const newest = t.buffer.newestTs();
    assert.ok(t.link.sent.every((s) => s.headTs === newest));
  });

  it('deletes a batch from the buffer only when its PUBACK arrives, whatever the order of the PUBACKs', () => {
    const t = manual();
    t.add(30);
    t.link.up();
    assert.deepEqual(t.buffered(), seqs(1, 30), 'all in flight, all still buffered');
    t.link.answer(11);
    assert.deepEqual(t.buffered(), [...seqs(1, 10), ...seqs(21, 30)]);
    assert.deepEqual(t.acked, [10]);
    t.link.answer(1);
    t.link.answer(21);
    assert.deepEqual(t.buffered(), []);
    assert.deepEqual(t.acked, [10, 10, 10]);
  });

  it('after a lost link, resends from the oldest unacknowledged reading once it is back, one batch at a time until one is acknowledged', () => {
    const t = manual();
    t.add(50);
    t.link.up();
    t.link.answer(1);
    // 11-20, 21-30, 31-40 in flight when the link goes.
    t.link.drop();
    assert.equal(t.publisher.inflightCount(), 0);
    assert.deepEqual(t.buffered(), seqs(11, 50), 'nothing unacknowledged is lost');
    t.link.up();
    assert.deepEqual(t.link.waiting(), [[11, 20]], 'one at a time: the next loss says which batch it was');
    t.link.answer(11);
    assert.deepEqual(
      t.link.waiting(),
      [
        [21, 30],
        [31, 40],
        [41, 50],
      ],
      'then as many as allowed',
    );
  });

  it('a PUBACK that the session delivers after the link came back still deletes its range, and that range is not sent again', () => {
    const t = manual({ maxInflight: 1 });
    t.add(20);
    t.link.up();
    const first = t.link.sent[0]!;
    t.link.emit('down');
    t.link.connected = false;
    t.link.sent.length = 0;
    t.link.up();
    assert.deepEqual(t.link.waiting(), [[1, 10]], 'resent from the buffer');
    // The session's own copy from before the loss is acknowledged first.
    first.done();
    assert.deepEqual(t.buffered(), seqs(11, 20));
    t.link.answer(1);
    assert.deepEqual(t.link.waiting(), [[11, 20]]);
    t.link.answer(11);
    assert.deepEqual(t.buffered(), []);
  });

  it('resends from the first reading of a publish the session gave up on, in order, and logs it', () => {
    const t = manual();
    t.add(30);
    t.link.up();
    t.link.answer(1);
    t.link.answer(11, new Error('connection closed'));
    assert.deepEqual(
      t.link.waiting(),
      [
        [21, 30],
        [11, 20],
        [21, 30],
      ],
      'everything from it on, again, while the link is up',
    );
    assert.deepEqual(t.buffered(), seqs(11, 30));
    const logged = t.lines.find((l) => l.msg === 'batch not acknowledged, will resend');
    assert.deepEqual([logged?.first, logged?.last, logged?.err], [11, 20, 'connection closed']);
  });

  it('a failed publish that the link already forgot is resent from the buffer once, not twice', () => {
    const t = manual();
    t.add(10);
    t.link.up();
    const lost = t.link.sent[0]!;
    t.link.drop();
    t.link.up();
    lost.done(new Error('connection closed'));
    assert.deepEqual(t.link.waiting(), [[1, 10]]);
  });

  it('waits lingerMs for a batch to fill, sends a full one at once', () => {
    const t = manual();
    t.link.up();
    t.add(4);
    t.publisher.notify();
    vi.advanceTimersByTime(199);
    assert.deepEqual(t.link.waiting(), [], 'a partial batch waits for the linger');
    vi.advanceTimersByTime(1);
    assert.deepEqual(t.link.waiting(), [[1, 4]]);
    t.add(10);
    t.publisher.notify();
    assert.deepEqual(
      t.link.waiting(),
      [
        [1, 4],
        [5, 14],
      ],
      'a full batch goes without waiting',
    );
  });

  it('holds readings waiting for a clock sync, and all after them, while asked to', () => {
    let hold = true;
    const t = manual({ holdUnsynced: () => hold });
    t.add(3);
    t.add(2, true);
    t.add(3);
    t.link.up();
    assert.deepEqual(t.link.waiting(), [[1, 3]], 'stops before the first unsynced reading');
    t.link.answer(1);
    assert.deepEqual(t.link.waiting(), []);
    hold = false;
    t.publisher.notify();
    vi.advanceTimersByTime(200);
    assert.deepEqual(t.link.waiting(), [[4, 8]]);
  });

  it('spaces publishes to maxPublishesPerSecond, backing off until a token is at hand', () => {
    const t = manual({ maxPublishesPerSecond: 2, maxInflight: 10 });
    t.add(40);
    t.link.up();
    assert.deepEqual(t.link.waiting(), [[1, 10]], 'one token at a time: no burst');
    vi.advanceTimersByTime(499);
    assert.equal(t.link.sent.length, 1);
    vi.advanceTimersByTime(1);
    assert.deepEqual(t.link.waiting(), [
      [1, 10],
      [11, 20],
    ]);
    vi.advanceTimersByTime(1000);
    assert.deepEqual(t.link.waiting(), [
      [1, 10],
      [11, 20],
      [21, 30],
      [31, 40],
    ]);
  });

  it('with the disk refusing the delete, counts the PUBACK and does not resend the batch', () => {
    let refuse = true;
    const t = manual({ bufferWrite: (write) => (refuse ? undefined : write()) });
    t.add(20);
    t.link.up();
    t.link.answer(1);
    assert.deepEqual(t.acked, [10]);
    assert.deepEqual(t.link.waiting(), [[11, 20]], 'the acknowledged range is not sent again');
    refuse = false;
    t.link.answer(11);
    assert.deepEqual(t.buffered(), seqs(1, 10), 'deleted with a later write');
  });

  describe('stopped mid-flight', () => {
    it('sends nothing more when a PUBACK arrives after stop(), but still deletes what it acknowledges', () => {
      const t = manual({ maxInflight: 1 });
      t.add(30);
      t.link.up();
      t.publisher.stop();
      t.link.answer(1);
      assert.deepEqual(t.link.waiting(), []);
      assert.deepEqual(t.buffered(), seqs(11, 30), 'the rest stays buffered for the next start');
    });

    it('sends nothing when the link comes back after stop()', () => {
      const t = manual();
      t.add(30);
      t.publisher.stop();
      t.link.up();
      assert.deepEqual(t.link.waiting(), []);
    });

    it('leaves no linger or rate timer behind to keep the process alive or send later', () => {
      const t = manual({ maxPublishesPerSecond: 1 });
      t.add(5);
      t.link.up();
      assert.deepEqual(t.link.waiting(), [[1, 5]]);
      t.publisher.stop();
      // A PUBACK arrives, a commit notifies (a partial batch would linger), the link comes back (the next batch would wait for the rate).
      t.link.answer(1);
      t.add(3);
      t.publisher.notify();
      t.link.up();
      assert.equal(vi.getTimerCount(), 0);
      vi.advanceTimersByTime(60_000);
      assert.deepEqual(t.link.waiting(), []);
    });

    it('cancels a pending linger', () => {
      const t = manual();
      t.link.up();
      t.add(3);
      t.publisher.notify();
      t.publisher.stop();
      vi.advanceTimersByTime(1000);
      assert.deepEqual(t.link.waiting(), []);
    });
  });
});
