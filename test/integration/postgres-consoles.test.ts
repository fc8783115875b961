import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import { PgStore } from '../../cloud/store/postgres/pg-store.js';
import { createLogger } from '../../shared/log.js';
import { openEvents } from '../support/event-stream.js';
import { freePort, tempDir, waitFor } from '../support/harness.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { storeAlertEvents, testAlert } from '../support/store-contract.js';

/**
 * Two consoles on one PostgreSQL, as behind one address: a session made on one is good on the
 * other, and what one does reaches the other's live stream.
 */
describe('two consoles on one PostgreSQL', () => {
  const dir = tempDir('fleet-pg-consoles-');
  const log = createLogger('test', { file: `${dir}/consoles.log` });
  let pg: PostgresServer;
  let detector: PgStore;
  const consoles: ConsoleServer[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    detector = new PgStore(url);
    await detector.open();
    // No gateway: the consoles' vehicle status is not what is tested here.
    const mqttUrl = `mqtt://127.0.0.1:${await freePort()}`;
    for (const name of ['a', 'b']) {
      const server = new ConsoleServer(
        { host: '127.0.0.1', port: 0, store: url, mqttUrl, serviceToken: 'service-secret', consoleToken: DEV_CONSOLE_TOKEN },
        log.child({ console: name }),
      );
      await server.start();
      consoles.push(server);
    }
  });

  afterAll(async () => {
    for (const c of consoles) await c.stop();
    await detector?.close();
    await pg?.stop();
  });

  it('shares sessions: signed in on one, signed in on the other; signed out on one, out on both', async () => {
    const [a, b] = consoles as [ConsoleServer, ConsoleServer];
    const res = await fetch(`${a.url}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'alice', password: DEV_CONSOLE_TOKEN }),
    });
    assert.equal(res.status, 200);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const user = async (url: string) =>
      ((await (await fetch(`${url}/api/config`, { headers: { cookie } })).json()) as { user: string | null }).user;
    assert.equal(await user(b.url), 'alice');
    assert.equal((await fetch(`${b.url}/api/alerts`, { headers: { cookie } })).status, 200);
    const out = await fetch(`${a.url}/api/session`, { method: 'DELETE', headers: { cookie, origin: a.url } });
    assert.equal(out.status, 200);
    assert.equal(await user(b.url), null);
    assert.equal((await fetch(`${b.url}/api/alerts`, { headers: { cookie } })).status, 401);
  });

  it("streams an acknowledgement made on one console to the other's pages within a second", async () => {
    const [a, b] = consoles as [ConsoleServer, ConsoleServer];
    const alert = testAlert('truck-9', { raisedAt: Date.now() });
    const bearer = { authorization: `Bearer ${DEV_CONSOLE_TOKEN}` };
    const stream = openEvents(b.url, bearer);
    try {
      await waitFor('the stream open', () => stream.events.some((e) => e.event === 'hello'), 10_000);
      await storeAlertEvents(detector, [{ kind: 'raised', alert }], Date.now());
      await waitFor(
        'the raised alert on the other console',
        () => stream.events.some((e) => e.event === 'alert' && e.data.id === alert.id),
        10_000,
      );

      const ack = await fetch(`${a.url}/api/alerts/${encodeURIComponent(alert.id)}/ack`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ by: 'alice' }),
      });
      assert.equal(ack.status, 200);
      const acked = Date.now();
      const seen = await waitFor(
        'the acknowledgement on the other console',
        () => stream.events.some((e) => e.event === 'alert' && e.data.id === alert.id && e.data.state === 'acknowledged') && Date.now(),
        10_000,
        10,
      );
      assert.ok(seen - acked <= 1000, `seen ${seen - acked} ms after the acknowledgement`);
      const { state, ackedBy } = (await (
        await fetch(`${b.url}/api/alerts/${encodeURIComponent(alert.id)}`, { headers: bearer })
      ).json()) as {
        state: string;
        ackedBy: string;
      };
      assert.deepEqual([state, ackedBy], ['acknowledged', 'alice']);
    } finally {
      stream.close();
    }
  });
});
