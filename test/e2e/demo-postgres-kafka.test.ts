import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { runFleet, tempDir } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';
import { query, startPostgres, type PostgresServer } from '../support/postgres.js';

describe('fleet demo --store postgres://… --stream kafka', () => {
  let kafka: KafkaBroker;
  let pg: PostgresServer;

  beforeAll(async () => {
    [kafka, pg] = await Promise.all([startKafka(), startPostgres()]);
  });

  afterAll(async () => {
    await kafka?.stop();
    await pg?.stop();
  });

  it('runs the whole system on Kafka and PostgreSQL, loses nothing and tells the overheating truck', async () => {
    const store = await pg.createDatabase();
    const args = ['demo', '--duration', '60', '--json', '--port', '0', '--console-port', '0', '--data-dir', tempDir()];
    const proc = runFleet([...args, '--store', store, '--stream', 'kafka', '--kafka-brokers', kafka.bootstrap]);
    assert.equal(await proc.exited, 0, proc.stderr.join('\n'));
    const summary = JSON.parse(proc.lines.filter((l) => l.trim() !== '').at(-1)!) as Record<string, number>;
    process.stdout.write(`# demo on PostgreSQL and Kafka: ${JSON.stringify(summary)}\n`);
    assert.ok(summary.readingsProduced! > 10 * 60 * 5, `produced ${summary.readingsProduced}`);
    assert.equal(summary.lost, 0);
    assert.equal(summary.readingsStored, summary.readingsProduced);
    assert.ok(summary.alertsRaised! >= 1);
    assert.ok(summary.driverAlertsDelivered! >= 1);
    // They are in PostgreSQL, not in a file beside the demo.
    const [row] = await query<{ readings: number; alerts: number }>(
      store,
      'SELECT (SELECT count(*)::integer FROM readings) AS readings, (SELECT count(*)::integer FROM alerts) AS alerts',
    );
    assert.deepEqual(row, { readings: summary.readingsStored, alerts: summary.alertsRaised });
  });
});
