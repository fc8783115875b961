import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { Registry } from 'prom-client';
import { AlertDispatcher } from '../../cloud/alerts/alert-dispatcher.js';
import { channelSettings, createChannels } from '../../cloud/alerts/create-channels.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { DEV_SERVICE_TOKEN } from '../../shared/service-token.js';
import { topics } from '../../shared/contract/topics.js';
import { createLogger } from '../../shared/log.js';
import { Cloud } from '../support/cloud.js';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { z } from 'zod';
import { overheatingStream, slowWebhookReceiver, type WebhookReceiver } from '../support/alert-fixtures.js';
import { exitWithin, freePort, kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';

const AWS_ENV = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
const REGION = 'us-east-1';

const VEHICLES = 12;

describe('webhook and SNS notifications across a dispatcher crash', () => {
  const dir = tempDir();
  let webhook: WebhookReceiver;
  let detector: Proc | undefined;
  let moto: MotoServer;
  let topicArn: string;
  let queueUrl: string;
  let sqs: SQSClient;

  beforeAll(async () => {
    Object.assign(process.env, AWS_ENV);
    moto = await startMoto();
    const aws = awsClientConfig({ region: REGION, endpoint: moto.endpoint });
    const sns = new SNSClient(aws);
    sqs = new SQSClient(aws);
    // A FIFO topic deduplicates by alert id, so a delivery repeated after a crash reaches the queue once.
    topicArn = (await sns.send(new CreateTopicCommand({ Name: 'fleet-alerts.fifo', Attributes: { FifoTopic: 'true' } }))).TopicArn!;
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'fleet-team.fifo', Attributes: { FifoQueue: 'true' } }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!
      .QueueArn!;
    await sns.send(
      new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }),
    );
    sns.destroy();

    webhook = await slowWebhookReceiver();
  });

  afterAll(async () => {
    if (detector) await kill(detector, 'SIGKILL');
    webhook.server.close();
    sqs.destroy();
    await moto.stop();
  });

  it('delivers every alert once to SNS, and to the webhook repeats only what a crash left in doubt, under the same key', async () => {
    const { streamPath, rulesFile } = overheatingStream(dir, 'wh-', VEHICLES);
    const { received } = webhook;
    const args = [
      'detector',
      '--stream-path',
      streamPath,
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      rulesFile,
      '--mqtt-url',
      'mqtt://127.0.0.1:1',
      '--webhook-url',
      webhook.url,
      '--ops-port',
      '-1',
      '--sns-topic-arn',
      topicArn,
      '--aws-region',
      REGION,
      '--aws-endpoint',
      moto.endpoint,
    ];
    detector = runFleet(args, AWS_ENV);
    await waitFor('a few deliveries', () => received.length >= 3, 20_000, 10);
    await kill(detector, 'SIGKILL');
    const beforeRestart = received.length;
    detector = runFleet(args, AWS_ENV);
    await waitFor(`all ${VEHICLES} alerts delivered`, () => new Set(received).size === VEHICLES, 30_000);
    await kill(detector, 'SIGTERM');

    const store = new Database(join(dir, 'cloud', 'fleet.db'), { readonly: true });
    const ids = (store.prepare('SELECT id FROM alerts ORDER BY id').all() as { id: string }[]).map((r) => r.id);
    const sent = store.prepare("SELECT count(*) AS n FROM deliveries WHERE channel = 'webhook' AND state = 'sent'").get() as { n: number };
    const snsSent = store.prepare("SELECT count(*) AS n FROM deliveries WHERE channel = 'sns' AND state = 'sent'").get() as { n: number };
    store.close();
    assert.equal(
      ids.length,
      VEHICLES,
      `one alert per vehicle, the restart raised no second one: ${ids.join(' ')} / received ${received.join(' ')}`,
    );
    assert.deepEqual([...new Set(received)].sort(), ids);
    assert.equal(sent.n, VEHICLES);
    // At most the one delivery in flight at the kill is repeated.
    assert.ok(received.length <= VEHICLES + 1, `received ${received.length} (${beforeRestart} before the kill)`);

    assert.equal(snsSent.n, VEHICLES);
    const onQueue: string[] = [];
    for (let i = 0; i < 10 && onQueue.length < VEHICLES; i++) {
      const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      onQueue.push(...(r.Messages ?? []).map((m) => (JSON.parse(m.Body!) as { id: string }).id));
    }
    assert.deepEqual(onQueue.sort(), ids, 'each alert reached the SNS topic exactly once');
  });
});

describe('detector and dispatcher with the built-in service token', () => {
  const dir = tempDir();
  const unset = { FLEET_SERVICE_TOKEN: '' };
  /** TEST-NET-1: an address beyond loopback that nothing answers. */
  const remoteGateway = 'mqtt://192.0.2.7:1883';
  const detectorArgs = [
    'detector',
    '--data-dir',
    join(dir, 'cloud'),
    '--stream-path',
    join(dir, 'stream.db'),
    '--mqtt-url',
    remoteGateway,
    '--ops-port',
    '-1',
  ];

  it('refuse to send it to a gateway beyond loopback, naming FLEET_SERVICE_TOKEN', async () => {
    const dispatcherArgs = [
      'dispatcher',
      '--kafka-brokers',
      '127.0.0.1:9',
      '--data-dir',
      join(dir, 'dispatcher'),
      '--mqtt-url',
      remoteGateway,
      '--ops-port',
      '-1',
    ];
    for (const args of [detectorArgs, dispatcherArgs]) {
      const p = runFleet(args, unset);
      const code = await exitWithin(p, 20_000);
      assert.equal(code, 2, `${args[0]}: ${p.stderr.join('\n')}`);
      assert.match(p.stderr.join('\n'), /serviceToken: .*192\.0\.2\.7.*set FLEET_SERVICE_TOKEN/, args[0]);
    }
  });

  it('start with a configured service token towards the same gateway', async () => {
    const p = runFleet(detectorArgs, { FLEET_SERVICE_TOKEN: 'a-configured-service-token' });
    try {
      await waitFor(
        'the detector running',
        () => p.lines.some((l) => l.includes('"detector started"')) || p.child.exitCode !== null,
        20_000,
      );
      assert.equal(p.child.exitCode, null, p.stderr.join('\n'));
    } finally {
      await kill(p);
    }
  });
});

describe('a detector whose store another process holds locked', () => {
  const dir = tempDir();
  const VEHICLES_LOCKED = 12;
  let webhook: WebhookReceiver;
  let detector: Proc | undefined;

  beforeAll(async () => {
    webhook = await slowWebhookReceiver();
  });

  afterAll(async () => {
    if (detector) await kill(detector, 'SIGKILL');
    webhook.server.close();
  });

  it('rides out SQLITE_BUSY in its delivery ledger: logged, counted, retried, unhealthy meanwhile, nothing lost or repeated', async () => {
    const { streamPath, rulesFile } = overheatingStream(dir, 'lk-', VEHICLES_LOCKED);
    const opsPort = await freePort();
    detector = runFleet([
      'detector',
      '--stream-path',
      streamPath,
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      rulesFile,
      '--mqtt-url',
      'mqtt://127.0.0.1:1',
      '--webhook-url',
      webhook.url,
      '--ops-port',
      String(opsPort),
    ]);
    await waitFor('a first delivery', () => webhook.received.length >= 1, 20_000, 5);
    // A writer that holds the store longer than its 5 s busy timeout, as a console or a backup might.
    const holder = new Database(join(dir, 'cloud', 'fleet.db'));
    holder.exec('BEGIN IMMEDIATE');
    const healthz = async () => {
      const res = await fetch(`http://127.0.0.1:${opsPort}/healthz`);
      return { status: res.status, body: (await res.json()) as { ledger?: string } };
    };
    const unhealthy = await waitFor(
      'the detector unhealthy while its ledger is refused',
      async () => {
        const h = await healthz();
        return h.status === 503 && h;
      },
      20_000,
      100,
    );
    assert.match(String(unhealthy.body.ledger), /SQLITE_BUSY/);
    holder.exec('COMMIT');
    holder.close();
    await waitFor(
      `all ${VEHICLES_LOCKED} alerts delivered`,
      () => new Set(webhook.received).size === VEHICLES_LOCKED || detector!.child.exitCode !== null,
      30_000,
    );
    await waitFor('healthy again', async () => (await healthz()).status === 200, 10_000, 100);
    assert.equal(detector.child.exitCode, null, `the detector exited: ${detector.stderr.join('\n')}`);
    assert.equal(new Set(webhook.received).size, VEHICLES_LOCKED);
    assert.equal(webhook.received.length, VEHICLES_LOCKED, 'no alert repeated');
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    assert.match(metrics, /fleet_alert_ledger_errors_total\{[^}]*\} [1-9]/);
    assert.ok(
      detector.lines.some((l) => l.includes('SQLITE_BUSY') && l.includes('"msg":"delivery ledger')),
      'the refusal is logged with its reason',
    );
  });
});

describe('the driver channel', () => {
  it('opens no connection before the dispatcher starts it', async () => {
    const dir = tempDir();
    const connections: Socket[] = [];
    const gateway = createServer((s) => connections.push(s));
    const port = await freePort();
    await new Promise<void>((r) => gateway.listen(port, '127.0.0.1', r));
    const store = new SqliteStore(join(dir, 'fleet.db'));
    const settings = z.object(channelSettings).parse({ mqttUrl: `mqtt://127.0.0.1:${port}` });
    const log = createLogger('test', { level: 'silent' });
    const dispatcher = new AlertDispatcher(store.deliveries, createChannels(settings, 'driver-channel-test', log), log, new Registry());
    try {
      // Enough for a connection made at construction to have arrived, loaded machine or not.
      await sleep(1000);
      assert.equal(connections.length, 0, 'constructing the channels connected to the gateway');
      dispatcher.start();
      await waitFor('the connection once started', () => connections.length > 0, 10_000);
    } finally {
      await dispatcher.stop();
      for (const s of connections) s.destroy();
      gateway.close();
      await store.close();
    }
  });
});

describe('cab acknowledgements through the gateway', () => {
  const dir = tempDir();
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
  });

  afterAll(async () => {
    await cloud.stop();
  });

  it('pass a valid one on to the dispatchers, and dead-letter a malformed one without cutting the cab off', async () => {
    const dispatcher = await mqtt.connectAsync(cloud.serviceMqttUrl, {
      clientId: 'ack-reader',
      username: 'dispatcher',
      password: DEV_SERVICE_TOKEN,
      reconnectPeriod: 0,
    });
    const consoleService = await mqtt.connectAsync(cloud.serviceMqttUrl, {
      clientId: 'ack-console',
      username: 'console',
      password: DEV_SERVICE_TOKEN,
      reconnectPeriod: 0,
    });
    const cab = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'ack-1', reconnectPeriod: 0 });
    try {
      const acks: string[] = [];
      const rejections: { reason: string; detail: string }[] = [];
      dispatcher.on('message', (_t, p) => acks.push(p.toString()));
      cab.on('message', (_t, p) => rejections.push(JSON.parse(p.toString())));
      assert.deepEqual(
        (await dispatcher.subscribeAsync(topics.allAlertAcks, { qos: 1 })).map((g) => g.qos),
        [1],
      );
      await assert.rejects(
        consoleService.subscribeAsync(topics.allAlertAcks, { qos: 1 }),
        (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted[0] === 128,
        'a console has no business with them',
      );
      await cab.subscribeAsync(topics.rejected('ack-1'), { qos: 1 });

      await cab.publishAsync(topics.alertAcks('ack-1'), Buffer.from('{"id": "ack-2.hot.1", "at": 1}'), { qos: 1 });
      const valid = JSON.stringify({ id: 'ack-1.hot.1764000010000', at: Date.now() });
      await cab.publishAsync(topics.alertAcks('ack-1'), Buffer.from(valid), { qos: 1 });
      await waitFor('the valid acknowledgement passed on', () => acks.length > 0);
      await waitFor('the rejection notice', () => rejections.length > 0);
      assert.deepEqual(acks, [valid]);
      assert.equal(rejections[0]!.reason, 'malformed');
      assert.match(rejections[0]!.detail, /^ack\.id: must be an alert id of ack-1/);
      assert.equal(cab.connected, true);
    } finally {
      await Promise.all([dispatcher.endAsync(true), consoleService.endAsync(true), cab.endAsync(true)]);
    }
  });
});
