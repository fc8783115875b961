import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Reading } from '../../shared/contract/reading.js';
import { StreamLog } from '../../shared/stream-log.js';
import { freePort, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';

const VEHICLES = 10;
const RULES = { windowMs: 1000, rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }] };

const overheat = (vehicle: string, now: number): Reading[] =>
  Array.from({ length: 30 }, (_, i) => ({
    vehicle, seq: i + 1, ts: now - 3000 + i * 100, clock: 'synced' as const, sensor: 'engine_temp' as const, value: 110, quality: 'good' as const,
  }));

/** detector → fleet.alerts (Kafka) → `fleet dispatcher` → webhook, with the dispatcher SIGKILLed mid-way. */
describe('alerts through fleet.alerts to a separate dispatcher', () => {
  const dir = tempDir();
  const received: string[] = [];
  let kafka: KafkaBroker;
  let server: Server;
  let url: string;
  const procs: Proc[] = [];

  before(async () => {
    kafka = await startKafka();
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
    for (const p of procs) await kill(p, 'SIGKILL');
    server.close();
    await kafka.stop();
  });

  it('delivers each alert id, repeating at most the one a crash left in doubt', async () => {
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(RULES));
    const streamPath = join(dir, 'stream.db');
    const stream = new StreamLog(streamPath);
    const now = Date.now();
    stream.append(Array.from({ length: VEHICLES }, (_, i) => {
      const vehicle = `as-${i + 1}`;
      return { batch: { vehicle, headTs: now, readings: overheat(vehicle, now) }, receivedAt: now };
    }));
    stream.close();
    procs.push(runFleet(['detector', '--stream-path', streamPath, '--data-dir', join(dir, 'cloud'), '--rules-file', join(dir, 'rules.json'),
      '--dispatch', 'kafka', '--kafka-brokers', kafka.bootstrap, '--ops-port', '-1']));
    const dispatcherArgs = ['dispatcher', '--kafka-brokers', kafka.bootstrap, '--data-dir', join(dir, 'dispatcher'),
      '--mqtt-url', 'mqtt://127.0.0.1:1', '--webhook-url', url, '--ops-port', '-1'];
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
    const sent = (ledger.prepare("SELECT alert_id AS id FROM deliveries WHERE channel = 'webhook' AND state = 'sent' ORDER BY alert_id").all() as { id: string }[]).map((r) => r.id);
    ledger.close();
    assert.deepEqual(sent, [...new Set(received)].sort());
    assert.ok(received.length <= VEHICLES + 1, `received ${received.length}`);
  });
});
