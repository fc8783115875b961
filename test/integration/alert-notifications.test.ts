import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { overheatingStream, slowWebhookReceiver, type WebhookReceiver } from '../support/alert-fixtures.js';
import { exitWithin, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
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

  before(async () => {
    Object.assign(process.env, AWS_ENV);
    moto = await startMoto();
    const aws = awsClientConfig({ region: REGION, endpoint: moto.endpoint });
    const sns = new SNSClient(aws);
    sqs = new SQSClient(aws);
    // A FIFO topic deduplicates by alert id, so a delivery repeated after a crash reaches the queue once.
    topicArn = (await sns.send(new CreateTopicCommand({ Name: 'fleet-alerts.fifo', Attributes: { FifoTopic: 'true' } }))).TopicArn!;
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'fleet-team.fifo', Attributes: { FifoQueue: 'true' } }))).QueueUrl!;
    const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }));
    sns.destroy();

    webhook = await slowWebhookReceiver();
  });

  after(async () => {
    if (detector) await kill(detector, 'SIGKILL');
    webhook.server.close();
    sqs.destroy();
    await moto.stop();
  });

  it('delivers every alert once to SNS, and to the webhook repeats only what a crash left in doubt, under the same key', async () => {
    const { streamPath, rulesFile } = overheatingStream(dir, 'wh-', VEHICLES);
    const { received } = webhook;
    const args = ['detector', '--stream-path', streamPath, '--data-dir', join(dir, 'cloud'), '--rules-file', rulesFile,
      '--mqtt-url', 'mqtt://127.0.0.1:1', '--webhook-url', webhook.url, '--ops-port', '-1',
      '--sns-topic-arn', topicArn, '--aws-region', REGION, '--aws-endpoint', moto.endpoint];
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
    assert.equal(ids.length, VEHICLES, `one alert per vehicle, the restart raised no second one: ${ids.join(' ')} / received ${received.join(' ')}`);
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
  const detectorArgs = ['detector', '--data-dir', join(dir, 'cloud'), '--stream-path', join(dir, 'stream.db'), '--mqtt-url', remoteGateway, '--ops-port', '-1'];

  it('refuse to send it to a gateway beyond loopback, naming FLEET_SERVICE_TOKEN', async () => {
    const dispatcherArgs = ['dispatcher', '--kafka-brokers', '127.0.0.1:9', '--data-dir', join(dir, 'dispatcher'), '--mqtt-url', remoteGateway, '--ops-port', '-1'];
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
      await waitFor('the detector running', () => p.lines.some((l) => l.includes('"detector started"')) || p.child.exitCode !== null, 20_000);
      assert.equal(p.child.exitCode, null, p.stderr.join('\n'));
    } finally {
      await kill(p);
    }
  });
});
