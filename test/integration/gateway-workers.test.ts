import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt from 'mqtt';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { exitWithin, freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { RedisServer } from '../support/redis-server.js';
import { queryValue } from '../support/sqlite.js';

interface WorkersHealth {
  ok: boolean;
  workers?: { wanted: number; running: number; restarts: number };
  perWorker?: { pid: number; ok: boolean; clients: number }[];
}

const CLIENTS = 24;
const BATCHES = 5;

function batch(vehicle: string, n: number): Buffer {
  const ts = Date.now() - 10_000 + n;
  const reading: Reading = { vehicle, seq: n, ts, clock: 'synced', sensor: 'engine_temp', value: 80 + n, quality: 'good' };
  return encodeBatch({ vehicle, headTs: ts, readings: [reading] });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `fleet gateway --workers 2`: two gateway processes behind one port, one stream, one ops port. */
describe('a gateway of two workers', () => {
  const dir = tempDir('fleet-workers-');
  const streamPath = join(dir, 'stream.db');
  const redis = new RedisServer();
  let port = 0;
  let opsPort = 0;
  let gateway: Proc;

  const health = async (): Promise<WorkersHealth> => {
    try {
      return (await getJson<WorkersHealth>(`http://127.0.0.1:${opsPort}/healthz`)).body;
    } catch {
      return { ok: false };
    }
  };
  const metric = async (name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
  };

  beforeAll(async () => {
    await redis.start();
    [port, opsPort] = [await freePort(), await freePort()];
    gateway = runFleet([
      'gateway',
      '--workers',
      '2',
      '--port',
      String(port),
      '--service-port',
      '-1',
      '--ops-port',
      String(opsPort),
      '--data-dir',
      join(dir, 'gateway'),
      '--stream-path',
      streamPath,
      '--cluster-redis-url',
      redis.url,
    ]);
    await waitFor('both workers healthy', async () => (await health()).ok, 30_000, 100);
  });

  afterAll(async () => {
    await kill(gateway, 'SIGKILL');
    await redis.stop();
  });

  it('takes readings from many clients spread over both workers into the one stream, each once, and sums their metrics', async () => {
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) =>
        mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `truck-${i}`, protocolVersion: 4, clean: false, reconnectPeriod: 0 }),
      ),
    );
    try {
      const served = (await health()).perWorker!.map((w) => w.clients);
      assert.equal(
        served.reduce((a, b) => a + b, 0),
        CLIENTS,
      );
      assert.ok(
        served.every((n) => n > 0),
        `both workers serve some: ${served.join(' + ')}`,
      );
      await Promise.all(
        clients.flatMap((c, i) =>
          Array.from({ length: BATCHES }, (_, n) => c.publishAsync(topics.telemetry(`truck-${i}`), batch(`truck-${i}`, n + 1), { qos: 1 })),
        ),
      );
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)));
    }
    // Every PUBACK came after the commit: the stream holds every batch now, none twice.
    assert.equal(queryValue<number>(streamPath, 'SELECT count(*) FROM telemetry'), CLIENTS * BATCHES);
    assert.equal(queryValue<number>(streamPath, 'SELECT count(DISTINCT vehicle) FROM telemetry'), CLIENTS);
    assert.equal(queryValue<number>(streamPath, 'SELECT count(DISTINCT payload) FROM telemetry'), CLIENTS * BATCHES);
    assert.equal(await metric('fleet_gateway_batches_accepted_total'), CLIENTS * BATCHES);
  });

  it('starts another worker in place of one that died', async () => {
    const was = await health();
    const before = was.perWorker!.map((w) => w.pid);
    process.kill(before[0]!, 'SIGKILL');
    const after = await waitFor(
      'a new worker, healthy',
      async () => {
        const h = await health();
        // Both answering: between the death and the new worker's first answer, health may list one.
        return h.ok && h.perWorker!.length === 2 && h.perWorker!.every((w) => w.pid !== before[0]) && h;
      },
      30_000,
      100,
    );
    // Counted from before the kill: any earlier death is in the log, and named here if it matters.
    const deaths = gateway.lines.filter((l) => l.includes('"msg":"gateway worker died')).join('\n');
    const restarts = was.workers!.restarts + 1;
    assert.deepEqual(after.workers, { wanted: 2, running: 2, restarts }, deaths);
    assert.ok(after.perWorker!.some((w) => w.pid === before[1]));
    assert.equal(await metric('fleet_gateway_worker_restarts_total'), restarts);
    assert.equal(await metric('fleet_gateway_workers'), 2);
  });

  it('stops every worker on SIGTERM and exits cleanly', async () => {
    const pids = (await health()).perWorker!.map((w) => w.pid);
    gateway.child.kill('SIGTERM');
    assert.equal(await exitWithin(gateway, 20_000), 0);
    assert.deepEqual(
      pids.filter((pid) => alive(pid)),
      [],
    );
  });

  it('refuses more than one worker without the Redis that links them, saying why', async () => {
    const alone = runFleet(['gateway', '--workers', '2', '--port', '0', '--ops-port', '-1', '--data-dir', join(dir, 'alone')]);
    assert.notEqual(await exitWithin(alone, 20_000), 0);
    assert.match(alone.stderr.join('\n'), /workers.*more than one worker needs clusterRedisUrl/s);
  });
});
