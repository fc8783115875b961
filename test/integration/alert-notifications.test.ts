import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import type { Reading } from '../../shared/contract/reading.js';
import { StreamLog } from '../../shared/stream-log.js';
import { freePort, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';

const AWS_ENV = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
const REGION = 'us-east-1';

const VEHICLES = 12;
const RULES = { windowMs: 1000, rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }] };

/** Two seconds of an overheating engine per vehicle: one alert each, raised live. */
function overheat(vehicle: string, now: number): Reading[] {
  return Array.from({ length: 30 }, (_, i) => ({
    vehicle, seq: i + 1, ts: now - 3000 + i * 100, clock: 'synced' as const, sensor: 'engine_temp' as const, value: 110, quality: 'good' as const,
  }));
}

describe('webhook and SNS notifications across a dispatcher crash', () => {
  const dir = tempDir();
  const received: string[] = [];
  let server: Server;
  let url: string;
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

    // A slow receiver, so the SIGKILL lands while deliveries are under way.
    server = createServer((req, res) => {
      received.push(String(req.headers['idempotency-key']));
      req.resume();
      setTimeout(() => res.writeHead(204).end(), 150);
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    url = `http://127.0.0.1:${port}/alerts`;
  });

  after(async () => {
    if (detector) await kill(detector, 'SIGKILL');
    server.close();
    sqs.destroy();
    await moto.stop();
  });

  it('delivers every alert once to SNS, and to the webhook repeats only what a crash left in doubt, under the same key', async () => {
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(RULES));
    const streamPath = join(dir, 'stream.db');
    const stream = new StreamLog(streamPath);
    const now = Date.now();
    stream.append(Array.from({ length: VEHICLES }, (_, i) => {
      const vehicle = `wh-${i + 1}`;
      return { batch: { vehicle, headTs: now, readings: overheat(vehicle, now) }, receivedAt: now };
    }));
    stream.close();
    const args = ['detector', '--stream-path', streamPath, '--data-dir', join(dir, 'cloud'), '--rules-file', join(dir, 'rules.json'),
      '--mqtt-url', 'mqtt://127.0.0.1:1', '--webhook-url', url, '--ops-port', '-1',
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
