import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, it } from 'vitest';
import { Aedes, type ConnectPacket, type PublishPacket } from 'aedes';
import { pino } from 'pino';
import { DriverChannel } from '../../../cloud/alerts/channels/driver-channel.js';
import type { ChannelReceipts } from '../../../cloud/alerts/alert-channel.js';
import { alertId, type Alert } from '../../../shared/contract/alert.js';
import { topics } from '../../../shared/contract/topics.js';
import { waitFor } from '../../support/harness.js';

const TOKEN = 'service-token-0123';

/** An in-process aedes broker standing in for the gateway: it records CONNECTs, subscriptions and what is published. */
async function startBroker() {
  const connects: ConnectPacket[] = [];
  const subscribed: string[] = [];
  const published: PublishPacket[] = [];
  const aedes = await Aedes.createBroker({
    preConnect: (_client, packet, done) => {
      connects.push(packet);
      done(null, true);
    },
    authorizeSubscribe: (_client, sub, done) => {
      subscribed.push(sub.topic);
      done(null, sub);
    },
  });
  aedes.on('publish', (packet, client) => {
    if (client) published.push(packet);
  });
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const send = (topic: string, payload: string, retain = false) =>
    new Promise<void>((resolve, reject) =>
      aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    subscribed,
    published,
    send,
    close: async () => {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setUp() {
  const broker = await startBroker();
  cleanups.push(broker.close);
  const channel = new DriverChannel({ mqttUrl: broker.url, serviceToken: TOKEN, clientId: 'dispatcher-test' }, pino({ level: 'silent' }));
  cleanups.push(() => channel.close());
  const heard: string[] = [];
  const receipts: ChannelReceipts = {
    acknowledged: (id, vehicle) => heard.push(`acknowledged ${vehicle} ${id}`),
    reachable: (vehicle) => heard.push(`reachable ${vehicle}`),
    refused: (detail, vehicle) => heard.push(`refused ${vehicle} ${detail}`),
  };
  return { broker, channel, receipts, heard };
}

const alert = (vehicle: string): Alert => ({
  id: alertId(vehicle, 'engine_overheat', 1_700_000_000_000),
  vehicle,
  rule: 'engine_overheat',
  severity: 'critical',
  sensor: 'engine_temp',
  episodeStart: 1_700_000_000_000,
  windowStart: 1_700_000_000_000,
  windowEnd: 1_700_000_010_000,
  observed: 112,
  expected: 105,
  message: 'engine temperature above 105 °C',
  live: true,
  raisedAt: 1_700_000_010_100,
  closedAt: 1_700_000_010_050,
});

describe('the driver channel', () => {
  it('opens no connection when constructed, only when started', async () => {
    const t = await setUp();
    await assert.rejects(t.channel.send(alert('truck-1')), /gateway not connected/);
    assert.equal(t.broker.connects.length, 0);
    t.channel.start(t.receipts);
    await waitFor('the connection', () => t.broker.connects.length === 1);
    const c = t.broker.connects[0]!;
    assert.deepEqual([c.clientId, c.username, c.password?.toString(), c.protocolVersion], ['dispatcher-test', 'dispatcher', TOKEN, 4]);
    await waitFor('its subscriptions', () => t.broker.subscribed.length === 2);
    assert.deepEqual(t.broker.subscribed.sort(), [topics.allAlertAcks, topics.allStatus].sort());
  });

  it("sends an alert down to the cab's topic, as the contract's alert", async () => {
    const t = await setUp();
    t.channel.start(t.receipts);
    await waitFor('subscribed', () => t.broker.subscribed.length === 2);
    await t.channel.send({ ...alert('truck-1'), state: 'active' } as Alert);
    const sent = await waitFor('the alert', () => t.broker.published.find((p) => p.topic === topics.alerts('truck-1')));
    assert.equal(sent.qos, 0);
    assert.deepEqual(JSON.parse(sent.payload.toString()), alert('truck-1'));
  });

  it('reports a cab coming online once, its acknowledgements, and acknowledgements it cannot read', async () => {
    const t = await setUp();
    t.channel.start(t.receipts);
    await waitFor('subscribed', () => t.broker.subscribed.length === 2);
    await t.broker.send(topics.status('truck-1'), '{"online":true,"at":1}');
    await t.broker.send(topics.status('truck-1'), '{"online":true,"at":2}');
    await t.broker.send(topics.status('truck-1'), '{"online":false,"at":3}');
    await t.broker.send(topics.status('truck-1'), 'not json');
    await t.broker.send(topics.status('truck-1'), '{"online":true,"at":4}');
    const id = alert('truck-1').id;
    await t.broker.send(topics.alertAcks('truck-1'), JSON.stringify({ id, at: 5 }));
    await t.broker.send(topics.alertAcks('truck-1'), JSON.stringify({ id: alert('truck-2').id, at: 6 }));
    await waitFor('every report', () => t.heard.length === 4);
    assert.deepEqual(t.heard.slice(0, 3), ['reachable truck-1', 'reachable truck-1', `acknowledged truck-1 ${id}`]);
    assert.match(t.heard[3]!, /^refused truck-1 ack\.id: must be an alert id of truck-1/);
  });
});
