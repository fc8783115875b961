import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { pino } from 'pino';
import { ReadingBuffer } from '../../../agent/buffer.js';
import type { AgentLink } from '../../../agent/link.js';
import { MAX_LOSSES_PER_BATCH, Publisher } from '../../../agent/publisher.js';
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
    buffer.append(Array.from({ length: n }, (_, i) => ({ ts: Date.now() + i, clock: 'synced' as const, sensor: 'engine_temp' as const, value: 90, quality: 'good' as const })));
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
    assert.ok(poison.slice(1).every((s) => s.inflight === 1), 'alone in flight, so the loss is its own');
    assert.deepEqual(t.setAside, [10]);
    assert.deepEqual(t.publisher.setAsideCount(), { batches: 1, readings: 10 });
    assert.deepEqual(t.buffer.after(0, 100).map((r) => r.seq), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 'still in the buffer, nothing else is');
    const logged = t.lines.find((l) => l.msg === 'batch set aside: the link was lost each time it was sent; it stays in the buffer, unsent until the agent restarts');
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
    assert.ok(t.link.sent.slice(resent + 1).some((s) => s.inflight > 1), 'several again once one was acknowledged');
    assert.deepEqual(t.setAside, []);
    assert.deepEqual(t.buffer.after(0, 1000), [], 'everything acknowledged');
  });

  it("logs and counts the gateway's rejection notices", async () => {
    const t = setUp(() => 'ack', 0);
    t.link.emit('rejected', Buffer.from(JSON.stringify({ reason: 'oversize', detail: 'payload of 300000 bytes exceeds the limit of 262144', topic: 'fleet/v1/truck-1/telemetry', at: 1 })));
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
