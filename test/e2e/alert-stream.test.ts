import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { overheatingStream, slowWebhookReceiver, type WebhookReceiver } from '../support/alert-fixtures.js';
import { kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';

const VEHICLES = 10;

/** detector → fleet.alerts (Kafka) → `fleet dispatcher` → webhook, with the dispatcher SIGKILLed mid-way. */
describe('alerts through fleet.alerts to a separate dispatcher', () => {
  const dir = tempDir();
  let kafka: KafkaBroker;
  let webhook: WebhookReceiver;
  const procs: Proc[] = [];

  beforeAll(async () => {
    kafka = await startKafka();
    webhook = await slowWebhookReceiver();
  });

  afterAll(async () => {
    for (const p of procs) await kill(p, 'SIGKILL');
    webhook.server.close();
    await kafka.stop();
  });

  it('delivers each alert id, repeating at most the one a crash left in doubt', async () => {
    const { streamPath, rulesFile } = overheatingStream(dir, 'as-', VEHICLES);
    const { received } = webhook;
    procs.push(
      runFleet([
        'detector',
        '--stream-path',
        streamPath,
        '--data-dir',
        join(dir, 'cloud'),
        '--rules-file',
        rulesFile,
        '--dispatch',
        'kafka',
        '--kafka-brokers',
        kafka.bootstrap,
        '--ops-port',
        '-1',
      ]),
    );
    const dispatcherArgs = [
      'dispatcher',
      '--kafka-brokers',
      kafka.bootstrap,
      '--data-dir',
      join(dir, 'dispatcher'),
      '--mqtt-url',
      'mqtt://127.0.0.1:1',
      '--webhook-url',
      webhook.url,
      '--ops-port',
      '-1',
    ];
    const first = runFleet(dispatcherArgs);
    procs.push(first);
    await waitFor('a few deliveries', () => received.length >= 3, 60_000, 10);
    await kill(first, 'SIGKILL');
    const second = runFleet(dispatcherArgs);
    procs.push(second);
    await waitFor(`all ${VEHICLES} alerts delivered`, () => new Set(received).size === VEHICLES, 60_000);
    await kill(second, 'SIGTERM');
    assert.equal(second.child.exitCode, 0, second.stderr.join('\n'));

    const ledger = new Database(join(dir, 'dispatcher', 'ledger.db'), { readonly: true });
    const sent = (
      ledger.prepare("SELECT alert_id AS id FROM deliveries WHERE channel = 'webhook' AND state = 'sent' ORDER BY alert_id").all() as {
        id: string;
      }[]
    ).map((r) => r.id);
    ledger.close();
    assert.deepEqual(sent, [...new Set(received)].sort());
    assert.ok(received.length <= VEHICLES + 1, `received ${received.length}`);
  });
});
