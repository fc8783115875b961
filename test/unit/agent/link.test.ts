import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, it, vi } from 'vitest';
import { Aedes, type Client, type ConnectPacket, type PublishPacket } from 'aedes';
import { pino } from 'pino';
import { AgentLink, type LinkOptions } from '../../../agent/link.js';
import { gatewayAddresses } from '../../../shared/gateway-urls.js';
import { readAlertAck } from '../../../shared/contract/alert-ack.js';
import { topics } from '../../../shared/contract/topics.js';
import { waitFor } from '../../support/harness.js';

const V = 'truck-7';

/** Polls on event-loop turns, for while setTimeout is faked; bounded in real time. */
async function turnsUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * An in-process aedes broker standing in for the gateway, recording what the agent's link
 * does: its CONNECT, its subscriptions and its publishes (in the order the broker saw them).
 */
class Broker {
  readonly connects: ConnectPacket[] = [];
  /** 'subscribe <filter>' and 'publish <topic>' lines, in order. */
  readonly events: string[] = [];
  readonly published: PublishPacket[] = [];
  /** Filters to refuse (SUBACK 0x80). */
  readonly refuse = new Set<string>();
  /** When true, the broker keeps PUBACKs for itself: publishes from the agent are never acknowledged. */
  silent = false;
  private aedes!: Aedes;
  private connection?: Client;
  private retained?: Record<string, unknown>;
  private server!: Server;
  port = 0;
  /** Status documents as the broker published them, the Will included: whether each said online. */
  readonly statusLog: boolean[] = [];

  async start(port = 0): Promise<this> {
    this.aedes = await Aedes.createBroker({
      preConnect: (_client, packet, done) => {
        this.connects.push(packet);
        done(null, true);
      },
      authorizeSubscribe: (_client, sub, done) => {
        this.events.push(`subscribe ${sub.topic}`);
        done(null, this.refuse.has(sub.topic) ? null : sub);
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(null);
        this.events.push(`publish ${packet.topic}`);
        this.published.push({ ...packet, payload: Buffer.from(packet.payload) });
        // Never calling back holds aedes's PUBACK.
        if (!this.silent) done(null);
      },
    });
    this.aedes.on('publish', (packet) => {
      if (packet.topic !== topics.status(V)) return;
      const doc = JSON.parse(packet.payload.toString()) as Record<string, unknown>;
      this.statusLog.push(doc.online === true);
      if (packet.retain) this.retained = doc;
    });
    this.aedes.on('clientReady', (client) => (this.connection = client));
    this.aedes.on('clientDisconnect', (client) => {
      if (this.connection === client) this.connection = undefined;
    });
    this.server = createServer(this.aedes.handle);
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The vehicle's connection while the broker has it. */
  client(): Client | undefined {
    return this.connection;
  }

  /** Cuts the vehicle's connection as a dead zone would: no DISCONNECT, so its Will applies. */
  cut(): void {
    assert.ok(this.connection, 'the vehicle is connected');
    (this.connection.conn as unknown as { destroy(): void }).destroy();
  }

  /** What a subscriber to the vehicle's status would be given now: the last retained document. */
  retainedStatus(): Record<string, unknown> | undefined {
    return this.retained;
  }

  send(topic: string, payload: string): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  /** The status documents the broker was asked to take (a Will, when it applies, too), in order. */
  statusesPublished(): Record<string, unknown>[] {
    return this.published
      .filter((p) => p.topic === topics.status(V))
      .map((p) => JSON.parse(p.payload.toString()) as Record<string, unknown>);
  }

  /** How many times the vehicle said it is online. */
  onlines(): number {
    return this.statusesPublished().filter((d) => d.online === true).length;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp(opts: Partial<LinkOptions> = {}) {
  const broker = await new Broker().start();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const link = new AgentLink(
    {
      gateways: gatewayAddresses(`mqtt://127.0.0.1:${broker.port}`),
      vehicle: V,
      keepaliveS: 30,
      reconnectBaseMs: 20,
      reconnectMaxMs: 100,
      maxInflight: 4,
      ...opts,
    },
    log,
    () => ({ agentVersion: '9.9.9' }),
  );
  const seen: string[] = [];
  link.on('up', () => seen.push('up'));
  link.on('down', () => seen.push('down'));
  cleanups.push(async () => {
    await link.stop();
    await broker.close();
  });
  return { broker, link, lines, seen };
}

describe('the agent link', () => {
  it('connects as the vehicle with a persistent MQTT 3.1.1 session and an offline Last Will, retained', async () => {
    const t = await setUp({ username: V, password: 'device-secret', keepaliveS: 45 });
    t.link.start();
    await waitFor('up', () => t.link.connected);
    const c = t.broker.connects[0]!;
    assert.deepEqual(
      {
        clientId: c.clientId,
        clean: c.clean,
        protocolVersion: c.protocolVersion,
        keepalive: c.keepalive,
        username: c.username,
        password: c.password?.toString(),
      },
      { clientId: V, clean: false, protocolVersion: 4, keepalive: 45, username: V, password: 'device-secret' },
    );
    assert.equal(c.will?.topic, topics.status(V));
    assert.deepEqual([c.will?.qos, c.will?.retain], [1, true]);
    assert.equal(JSON.parse(c.will.payload.toString()).online, false);
    assert.deepEqual(t.seen, ['up']);
  });

  it('follows its alerts and rejected topics, then says it is online (retained) with its status detail', async () => {
    const t = await setUp();
    t.link.start();
    await waitFor('online status', () => t.broker.statusesPublished().length > 0);
    assert.deepEqual(
      t.broker.events,
      [`subscribe ${topics.alerts(V)}`, `subscribe ${topics.rejected(V)}`, `publish ${topics.status(V)}`],
      'online only once alerts can reach the cab',
    );
    const status = t.broker.published.find((p) => p.topic === topics.status(V))!;
    assert.deepEqual([status.qos, status.retain], [1, true]);
    const doc = JSON.parse(status.payload.toString()) as Record<string, unknown>;
    assert.equal(doc.online, true);
    assert.equal(doc.agentVersion, '9.9.9');
    assert.equal(typeof doc.at, 'number');
  });

  it('hands alerts and rejection notices on, each to its own listeners', async () => {
    const t = await setUp();
    const alerts: string[] = [];
    const rejected: string[] = [];
    t.link.on('alert', (p) => alerts.push(p.toString()));
    t.link.on('rejected', (p) => rejected.push(p.toString()));
    t.link.start();
    await waitFor('subscribed', () => t.broker.statusesPublished().length > 0);
    await t.broker.send(topics.alerts(V), '{"id":"a1"}');
    await t.broker.send(topics.rejected(V), '{"reason":"malformed"}');
    await waitFor('both delivered', () => alerts.length + rejected.length === 2);
    assert.deepEqual(alerts, ['{"id":"a1"}']);
    assert.deepEqual(rejected, ['{"reason":"malformed"}']);
  });

  it('publishes at QoS 1 and reports the PUBACK to the caller', async () => {
    const t = await setUp();
    t.link.start();
    await waitFor('up', () => t.link.connected);
    const err = await new Promise<Error | undefined>((resolve) => t.link.publish(topics.telemetry(V), Buffer.from('batch'), resolve));
    assert.equal(err, undefined);
    const sent = t.broker.published.find((p) => p.topic === topics.telemetry(V));
    assert.deepEqual([sent?.qos, sent?.payload.toString()], [1, 'batch']);
  });

  it("acknowledges a cab's alert on its alert-acks topic", async () => {
    const t = await setUp();
    t.link.start();
    await waitFor('up', () => t.link.connected);
    t.link.acknowledgeAlert('truck-7.engine_overheat.1700000000000');
    const ack = await waitFor('the acknowledgement', () => t.broker.published.find((p) => p.topic === topics.alertAcks(V)));
    const read = readAlertAck(V, Buffer.from(ack.payload));
    assert.ok('ack' in read, JSON.stringify(read));
    assert.equal(read.ack.id, 'truck-7.engine_overheat.1700000000000');
  });

  describe('when the link is lost', () => {
    it('says down, lets the Will mark the vehicle offline, and comes back by itself', async () => {
      const t = await setUp();
      t.link.start();
      await waitFor('online', () => t.broker.statusLog.length === 1);
      t.broker.cut();
      await waitFor('reconnected and online again', () => t.broker.statusLog.length === 3);
      assert.deepEqual(t.broker.statusLog, [true, false, true], 'online, offline by the Will, online');
      assert.deepEqual(t.seen, ['up', 'down', 'up']);
      assert.ok(t.lines.some((l) => l.msg === 'gateway link lost'));
      assert.equal(t.link.connected, true);
      assert.equal(t.broker.retainedStatus()?.online, true);
    });

    it('keeps its session: a rejection notice sent as the link dropped arrives on the next connection', async () => {
      const t = await setUp();
      const rejected: string[] = [];
      t.link.on('rejected', (p) => rejected.push(p.toString()));
      t.link.start();
      await waitFor('online', () => t.broker.onlines() === 1);
      t.broker.cut();
      await t.broker.send(topics.rejected(V), '{"reason":"packet_too_large"}');
      await waitFor('online again', () => t.broker.onlines() === 2);
      await waitFor('the notice', () => rejected.length > 0);
      assert.deepEqual(rejected, ['{"reason":"packet_too_large"}']);
    });

    it('subscribes again on the next connect to a topic the gateway refused', async () => {
      const t = await setUp();
      t.broker.refuse.add(topics.rejected(V));
      t.link.start();
      await waitFor('online', () => t.broker.onlines() === 1);
      t.broker.refuse.clear();
      t.broker.cut();
      await waitFor('online again', () => t.broker.onlines() === 2);
      const subscribes = t.broker.events.filter((e) => e.startsWith('subscribe'));
      assert.ok(subscribes.slice(2).includes(`subscribe ${topics.rejected(V)}`), 'asked for again');
      assert.ok(t.lines.some((l) => l.msg === 'subscription failed, will subscribe again on the next connect'));
    });

    it('keeps trying with backoff while the gateway is away, and connects once it is back', async () => {
      const t = await setUp({ reconnectBaseMs: 10, reconnectMaxMs: 40 });
      t.link.start();
      await waitFor('up', () => t.link.connected);
      const port = t.broker.port;
      await t.broker.close();
      await waitFor('down', () => !t.link.connected);
      await waitFor('a few failed attempts', () => t.lines.filter((l) => l.msg === 'gateway link error').length >= 2, 10_000);
      // The gateway comes back on the same port.
      const back = await new Broker().start(port);
      cleanups.push(() => back.close());
      await waitFor('reconnected', () => t.link.connected, 10_000);
      assert.equal(back.connects[0]?.clientId, V);
    });
  });

  describe('with several gateways', () => {
    /** A link given two gateways, started on the one its vehicle id hashes to. */
    async function twoGateways() {
      const a = await new Broker().start();
      const b = await new Broker().start();
      cleanups.push(() => b.close());
      const urls = [`mqtt://127.0.0.1:${a.port}`, `mqtt://127.0.0.1:${b.port}`];
      const t = await setUp({ gateways: gatewayAddresses(urls.join(',')) });
      cleanups.push(() => a.close());
      const failovers: [string, string][] = [];
      t.link.on('failover', (from, to) => failovers.push([from, to]));
      t.link.start();
      await waitFor('up', () => t.link.connected);
      const [first, second] = a.connects.length > 0 ? [a, b] : [b, a];
      const [firstUrl, secondUrl] = first === a ? urls : [urls[1]!, urls[0]!];
      return { ...t, first, second, firstUrl: firstUrl!, secondUrl: secondUrl!, failovers };
    }

    it('moves to the other gateway when its own goes away, follows its topics there and says which gateway it is on', async () => {
      const t = await twoGateways();
      assert.equal(t.link.gateway, t.firstUrl);
      await waitFor('online on the first', () => t.first.onlines() === 1);
      assert.equal(t.first.statusesPublished()[0]!.gateway, t.firstUrl, 'the status names the gateway');
      await t.first.close();
      await waitFor('online on the second', () => t.second.onlines() === 1, 10_000);
      assert.equal(t.link.gateway, t.secondUrl);
      assert.equal(t.second.statusesPublished()[0]!.gateway, t.secondUrl);
      assert.deepEqual(
        t.second.events.filter((e) => e.startsWith('subscribe')),
        [`subscribe ${topics.alerts(V)}`, `subscribe ${topics.rejected(V)}`],
        'a gateway without its session is asked for the subscriptions again',
      );
      assert.deepEqual(t.failovers, [[t.firstUrl, t.secondUrl]]);
      assert.ok(t.lines.some((l) => l.msg === 'failed over to another gateway' && l.from === t.firstUrl && l.to === t.secondUrl));
    });

    it('goes round the list while none answers, then connects to the first that does', async () => {
      const t = await twoGateways();
      const ports = [t.first.port, t.second.port];
      await t.first.close();
      await t.second.close();
      await waitFor('attempts at both', () => t.lines.filter((l) => l.msg === 'gateway link error').length >= 4, 10_000);
      const back = await new Broker().start(ports[1]);
      cleanups.push(() => back.close());
      await waitFor('connected to the one that came back', () => t.link.connected, 10_000);
      assert.equal(back.connects[0]?.clientId, V);
      assert.equal(t.link.gateway, t.secondUrl);
    });
  });

  describe('stop', () => {
    it('says offline itself (retained), closes, and does not reconnect', async () => {
      const t = await setUp();
      t.link.start();
      await waitFor('online', () => t.broker.retainedStatus()?.online === true);
      await t.link.stop();
      assert.equal(t.broker.retainedStatus()?.online, false);
      assert.equal(t.broker.connects.length, 1);
      await waitFor('the broker sees it leave', () => t.broker.client() === undefined);
    });

    it('does not wait beyond its timeout for a gateway that never acknowledges the offline status', async () => {
      const t = await setUp();
      t.link.start();
      await waitFor('online', () => t.broker.onlines() === 1);
      t.broker.silent = true;
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      let stopped = false;
      const stopping = t.link.stop().then(() => (stopped = true));
      await turnsUntil('the offline status sent', () => t.broker.statusesPublished().length === 2);
      await vi.advanceTimersByTimeAsync(1999);
      assert.equal(stopped, false, 'waits for the PUBACK a while');
      await vi.advanceTimersByTimeAsync(1);
      await turnsUntil('stopped', () => stopped);
      await stopping;
      assert.equal(t.broker.statusesPublished()[1]!.online, false);
    });

    it('once the gateway took the offline status, leaves no timer behind', async () => {
      const t = await setUp();
      t.link.start();
      await waitFor('online', () => t.broker.onlines() === 1);
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      await t.link.stop();
      assert.equal(vi.getTimerCount(), 0, 'nothing keeps a stopping agent alive');
    });

    it('before it ever connected, does nothing', async () => {
      const t = await setUp();
      await t.link.stop();
      assert.equal(t.broker.connects.length, 0);
    });
  });
});
