import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Reading } from '../../shared/contract/reading.js';
import { StreamLog } from '../../shared/stream-log.js';
import { freePort, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';

const VEHICLES = 12;
const RULES = { windowMs: 1000, rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }] };

/** Two seconds of an overheating engine per vehicle: one alert each, raised live. */
function overheat(vehicle: string, now: number): Reading[] {
  return Array.from({ length: 30 }, (_, i) => ({
    vehicle, seq: i + 1, ts: now - 3000 + i * 100, clock: 'synced' as const, sensor: 'engine_temp' as const, value: 110, quality: 'good' as const,
  }));
}

describe('webhook notifications across a dispatcher crash', () => {
  const dir = tempDir();
  const received: string[] = [];
  let server: Server;
  let url: string;
  let detector: Proc | undefined;

  before(async () => {
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
  });

  it('delivers every alert, and repeats only what a crash left in doubt, under the same idempotency key', async () => {
    const { writeFileSync } = await import('node:fs');
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
      '--mqtt-url', 'mqtt://127.0.0.1:1', '--webhook-url', url, '--ops-port', '-1'];
    detector = runFleet(args);
    await waitFor('a few deliveries', () => received.length >= 3, 20_000, 10);
    await kill(detector, 'SIGKILL');
    const beforeRestart = received.length;
    detector = runFleet(args);
    await waitFor(`all ${VEHICLES} alerts delivered`, () => new Set(received).size === VEHICLES, 30_000);
    await kill(detector, 'SIGTERM');

    const store = new Database(join(dir, 'cloud', 'fleet.db'), { readonly: true });
    const ids = (store.prepare('SELECT id FROM alerts ORDER BY id').all() as { id: string }[]).map((r) => r.id);
    const sent = store.prepare("SELECT count(*) AS n FROM deliveries WHERE channel = 'webhook' AND state = 'sent'").get() as { n: number };
    store.close();
    assert.equal(ids.length, VEHICLES, `one alert per vehicle, the restart raised no second one: ${ids.join(' ')} / received ${received.join(' ')}`);
    assert.deepEqual([...new Set(received)].sort(), ids);
    assert.equal(sent.n, VEHICLES);
    // At most the one delivery in flight at the kill is repeated.
    assert.ok(received.length <= VEHICLES + 1, `received ${received.length} (${beforeRestart} before the kill)`);
  });
});
