import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { GuardedConnection, type GuardLimits, type GuardViolation } from '../../../gateway/packet-guard.js';
import { waitFor } from '../../support/harness.js';

/** MQTT 3.1.1 packets by hand: the guard must see exactly what a client sends. */
function packet(type: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    len.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...len]), body]);
}
const str = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s) >> 8, Buffer.byteLength(s) & 0xff]), Buffer.from(s)]);
const connectPacket = (clientId: string) => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60]), str(clientId)]));
const publish = (topic: string, payload: Buffer, id?: number) =>
  packet(
    id === undefined ? 0x30 : 0x32,
    Buffer.concat([str(topic), id === undefined ? Buffer.alloc(0) : Buffer.from([id >> 8, id & 0xff]), payload]),
  );

const LIMITS: GuardLimits = { maxPayloadBytes: 1000, maxPacketBytes: 2000, connectTimeoutMs: 60_000 };

describe('the packet guard in front of aedes', () => {
  let server: Server;
  let accepted: (s: Socket) => void = () => {};

  beforeAll(async () => {
    server = createServer((s) => accepted(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterAll(() => server.close());

  /** A real connection: bytes written to `client` arrive at the guard through a socket. */
  async function guarded(limits = LIMITS) {
    const ours = new Promise<Socket>((resolve) => (accepted = resolve));
    const client = connect((server.address() as { port: number }).port, '127.0.0.1');
    client.on('error', () => {});
    const socket = await ours;
    const violations: { reason: GuardViolation; detail: string }[] = [];
    const guard = new GuardedConnection(socket, limits, (reason, detail) => violations.push({ reason, detail }));
    guard.on('error', () => {});
    const chunks: Buffer[] = [];
    guard.on('data', (d: Buffer) => chunks.push(d));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    /** Writes `bytes` in pieces of `size`, as a slow or fragmented link delivers them. */
    const send = async (bytes: Buffer, size: number) => {
      for (let i = 0; i < bytes.length; i += size) {
        await new Promise<void>((resolve) => client.write(bytes.subarray(i, i + size), () => resolve()));
      }
    };
    return { client, guard, violations, closed, send, received: () => Buffer.concat(chunks) };
  }

  for (const size of [1, 7, 4096]) {
    it(`passes packets within the limits through untouched, in pieces of ${size} bytes`, async () => {
      const g = await guarded();
      const bytes = Buffer.concat([
        connectPacket('truck-1'),
        publish('fleet/v1/truck-1/telemetry', Buffer.alloc(1000, 1), 1),
        publish('t', Buffer.alloc(0)),
      ]);
      await g.send(bytes, size);
      await waitFor('everything through', () => g.received().length === bytes.length, 5000, 10);
      assert.deepEqual(g.received(), bytes);
      assert.deepEqual(g.violations, []);
      g.client.destroy();
    });

    it(`cuts a payload over the limit short, drops the rest and remembers what was sent, in pieces of ${size} bytes`, async () => {
      const g = await guarded();
      const topic = 'fleet/v1/truck-1/telemetry';
      const big = Buffer.alloc(50_000, 2);
      big.write('first bytes', 0);
      const small0 = publish(topic, Buffer.from('next'));
      const big0 = publish(topic, Buffer.alloc(5000, 3));
      await g.send(Buffer.concat([connectPacket('truck-1'), publish(topic, big, 7), small0, big0, small0]), size);
      const expected = Buffer.concat([
        connectPacket('truck-1'),
        publish(topic, big.subarray(0, 1000), 7),
        small0,
        publish(topic, Buffer.alloc(1000, 3)),
        small0,
      ]);
      await waitFor('everything through', () => g.received().length === expected.length, 5000, 10);
      assert.deepEqual(g.received(), expected);
      // Asked once per PUBLISH in arrival order: two QoS 0 publishes on one topic are told apart.
      assert.deepEqual(
        [topic, topic, topic, topic].map((t) => g.guard.takeShortened(t)),
        [50_000, undefined, 5000, undefined],
      );
      assert.deepEqual(g.violations, []);
      g.client.destroy();
    });
  }

  it('ends the connection for a packet other than PUBLISH over the limit, and for a first packet over it', async () => {
    for (const bytes of [
      Buffer.concat([connectPacket('truck-1'), packet(0x82, Buffer.alloc(2001))]),
      publish('fleet/v1/truck-1/telemetry', Buffer.alloc(2001)),
    ]) {
      const g = await guarded();
      // No more than the headers: the guard decides on them, before the body.
      await g.send(bytes.subarray(0, bytes.length - 2000), 4096);
      await g.closed;
      assert.equal(g.violations[0]?.reason, 'packet_too_large');
      assert.match(g.violations[0].detail, /exceeds the limit of 2000/);
    }
  });

  it("sends what is written to it while corked in one socket write, in order (a turn's PUBACKs, each written in pieces)", async () => {
    const g = await guarded();
    const socket = g.guard.socket;
    const writes: Buffer[] = [];
    const write = socket.write.bind(socket) as (chunk: Buffer, cb: () => void) => boolean;
    socket.write = ((chunk: Buffer, cb: () => void) => (writes.push(Buffer.from(chunk)), write(chunk, cb))) as typeof socket.write;
    const pubacks = [1, 2, 3].flatMap((id) => [Buffer.from([0x40]), Buffer.from([2]), Buffer.from([0, id])]);
    const arrived: Buffer[] = [];
    g.client.on('data', (d: Buffer) => arrived.push(d));
    g.guard.cork();
    for (const piece of pubacks) g.guard.write(piece);
    g.guard.uncork();
    const expected = Buffer.concat(pubacks);
    await waitFor('the PUBACKs', () => Buffer.concat(arrived).length >= expected.length);
    assert.deepEqual(writes, [expected]);
    assert.deepEqual(Buffer.concat(arrived), expected);
    g.client.destroy();
  });

  it('ends the connection for a malformed length, and for a client that sends no CONNECT in time', async () => {
    const bad = await guarded();
    await bad.send(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), 6);
    await bad.closed;
    assert.deepEqual(
      bad.violations.map((v) => v.reason),
      ['malformed_packet'],
    );
    const started = Date.now();
    const silent = await guarded({ ...LIMITS, connectTimeoutMs: 200 });
    await silent.send(connectPacket('truck-1').subarray(0, 5), 5);
    await silent.closed;
    assert.ok(Date.now() - started >= 190);
    assert.deepEqual(silent.violations, [{ reason: 'connect_timeout', detail: 'no CONNECT within 200 ms' }]);
  });
});
