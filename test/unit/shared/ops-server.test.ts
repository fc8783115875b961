import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { afterEach, describe, it } from 'vitest';
import { pino } from 'pino';
import { Gauge } from 'prom-client';
import { createRegistry, portOf, startOpsServer, type Health } from '../../../shared/ops-server.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function start(health: () => Health, extra?: (registry: ReturnType<typeof createRegistry>) => void) {
  const registry = createRegistry('test');
  extra?.(registry);
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const server = await startOpsServer('127.0.0.1', 0, registry, health, log);
  servers.push(server);
  const get = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${portOf(server)}${path}`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  };
  return { get, lines };
}

describe('the ops server', () => {
  it('answers /healthz with the health as JSON: 200 when ok, 503 when not', async () => {
    let ok = true;
    const t = await start(() => ({ ok, detail: 'x' }));
    assert.deepEqual(await t.get('/healthz'), { status: 200, type: 'application/json', body: '{"ok":true,"detail":"x"}' });
    ok = false;
    assert.equal((await t.get('/healthz')).status, 503);
  });

  it('answers /metrics in the Prometheus text format, and anything else with 404 naming the paths', async () => {
    const t = await start(
      () => ({ ok: true }),
      (registry) => new Gauge({ name: 'fleet_test_value', help: 'a value', registers: [registry] }).set(3),
    );
    const metrics = await t.get('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /^fleet_test_value\{component="test"\} 3$/m);
    const other = await t.get('/other');
    assert.equal(other.status, 404);
    assert.deepEqual(JSON.parse(other.body), { error: 'no such path /other; try /healthz or /metrics' });
  });

  it('answers a health check that throws with 500 and its message, and logs it', async () => {
    const t = await start(() => {
      throw new Error('buffer closed');
    });
    const res = await t.get('/healthz');
    assert.equal(res.status, 500);
    assert.deepEqual(JSON.parse(res.body), { error: '/healthz: buffer closed' });
    const logged = t.lines.find((l) => l.msg === 'ops request failed');
    assert.deepEqual([logged?.level, logged?.url, logged?.err], [50, '/healthz', 'buffer closed']);
  });

  it('answers a metric that cannot be collected with 500 and its message, and keeps serving', async () => {
    const t = await start(
      () => ({ ok: true }),
      (registry) =>
        new Gauge({
          name: 'fleet_test_broken',
          help: 'a gauge whose collect fails',
          registers: [registry],
          collect() {
            throw new Error('store is closed');
          },
        }),
    );
    const res = await t.get('/metrics');
    assert.equal(res.status, 500);
    assert.match(JSON.parse(res.body).error, /^\/metrics: .*store is closed/);
    assert.ok(t.lines.some((l) => l.msg === 'ops request failed' && l.url === '/metrics'));
    assert.equal((await t.get('/healthz')).status, 200);
  });
});
