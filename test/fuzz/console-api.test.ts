import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { storeAlertEvents } from '../support/store-contract.js';
import { alertId, type Alert } from '../../shared/contract/alert.js';
import { createLogger } from '../../shared/log.js';
import { freePort, tempDir } from '../support/harness.js';
import { cases, FuzzTally, fuzzRandom, Mutator } from './mutators.js';

const TOKEN = 'fuzz-console-token';
const NOW = Date.now();
const STANDARD_METHODS = new Set(['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD']);
const METHODS = [...STANDARD_METHODS, 'get', 'FOO'];

function alert(vehicle: string, episodeStart: number): Alert {
  return {
    id: alertId(vehicle, 'engine-overheat', episodeStart),
    vehicle,
    rule: 'engine-overheat',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart,
    windowStart: episodeStart,
    windowEnd: episodeStart + 10_000,
    observed: 121.5,
    expected: 105,
    message: 'engine_temp mean 121.5 °C above 105 °C',
    live: true,
    raisedAt: episodeStart + 10_500,
    closedAt: episodeStart + 10_000,
  };
}

interface Answer {
  status: number;
  body: string;
}

/** One request on its own connection; a reset or a timeout rejects (the server fell over). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Requests at the console's HTTP API: mutated paths, query strings, methods, headers (cookies,
 * bearer tokens, origins, content types) and bodies, signed in and not, plus raw garbage on
 * the socket. Every answer must be a 2xx, a 3xx, or a 4xx whose JSON names what was wrong;
 * a 5xx, a reset or no answer is a crash; and no alert may change without a valid sign-in.
 */
describe('fuzz: the console HTTP API', () => {
  const dir = tempDir('fleet-fuzz-console-');
  const storePath = join(dir, 'fleet.db');
  const ids: string[] = [];
  let store: SqliteStore;
  let server: ConsoleServer;
  let port: number;

  beforeAll(async () => {
    store = new SqliteStore(storePath);
    for (let i = 1; i <= 5; i++) {
      const a = alert(`truck-${i}`, NOW - i * 60_000);
      ids.push(a.id);
      await storeAlertEvents(store, [{ kind: 'raised', alert: a }], NOW);
    }
    port = await freePort();
    server = new ConsoleServer(
      // No gateway to follow: the status link retries in the background, the API is what is fuzzed.
      {
        host: '127.0.0.1',
        port,
        store: storePath,
        mqttUrl: `mqtt://127.0.0.1:${await freePort()}`,
        serviceToken: 'unused-service-token',
        consoleToken: TOKEN,
      },
      createLogger('console', { file: join(dir, 'console.log') }),
    );
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
    await store.close();
  });

  it('answers every request with data or a reasoned 4xx, and changes nothing without a sign-in', async () => {
    const rnd = fuzzRandom('console api');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('console HTTP API');
    const signedIn = await send(
      port,
      'POST',
      '/api/session',
      { 'content-type': 'application/json' },
      Buffer.from(JSON.stringify({ user: 'fuzzer', password: TOKEN })),
    );
    assert.equal(signedIn.status, 200, signedIn.body);
    const paths = [
      '/api/vehicles',
      '/api/vehicles/truck-1/series',
      '/api/tracks',
      '/api/alerts',
      '/api/alerts?state=active&severity=critical&limit=5',
      '/api/alerts?vehicle=truck-2',
      `/api/alerts/${ids[0]}`,
      `/api/alerts/${ids[1]}/ack`,
      `/api/alerts/${ids[2]}/clear`,
      '/api/stats',
      '/api/config',
      '/api/session',
      '/healthz',
      '/',
      '/app/main.js',
      '/vendor/leaflet/leaflet.js',
      '/nope',
      // Names every object inherits, where a lookup by path segment could find them.
      '/vendor/constructor/leaflet.js',
      '/vendor/__proto__/x.js',
      '/app/main.toString',
      '/api/alerts/hasOwnProperty',
    ];
    const bodies = [{ user: 'a', password: TOKEN }, { by: 'operator' }, {}, { user: 'x', password: 'y', extra: 1 }];
    const originOk = `http://127.0.0.1:${port}`;
    let unauthorizedWrites = 0;
    const isWrite = (method: string, path: string) => method === 'POST' && /^\/api\/alerts\/[^/?#]+\/(ack|clear)(\?|$)/.test(path);
    for (let i = 0, n = cases(10_000); i < n; i++) {
      const authorized = m.chance(0.5);
      const method = m.chance(0.7) ? m.pick(['GET', 'POST', 'DELETE']) : m.pick(METHODS);
      let path = m.pick(paths);
      if (m.chance(0.6))
        path = m.mutateText(path, {
          dictionary: ['%', '%00', '%zz', '..', '//', '?', '&', '=', '#', '\u00ff', ' ', 'constructor', '__proto__', 'valueOf'],
          maxRounds: 3,
        });
      const headers: Record<string, string> = {};
      if (authorized) headers.authorization = `Bearer ${TOKEN}`;
      else if (m.chance(0.3)) headers.authorization = m.mutateText(`Bearer ${TOKEN}`, { maxRounds: 2 });
      if (m.chance(0.3)) headers.cookie = m.mutateText('fleet_session=abcdef0123456789', { maxRounds: 2 });
      if (m.chance(0.5)) headers.origin = m.chance(0.5) ? originOk : m.mutateText(originOk, { maxRounds: 2 });
      headers['content-type'] = m.chance(0.8) ? 'application/json' : m.mutateText('application/json; charset=utf-8', { maxRounds: 2 });
      const body = method === 'GET' || method === 'HEAD' ? undefined : m.chance(0.1) ? m.garbage(6000) : m.mutateJsonText(m.pick(bodies));
      const input = { method, path, headers, body: body?.toString('latin1') };
      await tally.checkAsync(input, async () => {
        let answer: Answer;
        try {
          answer = await send(port, method, path, headers, body);
        } catch (err) {
          // Node's own client refuses some of what we made (a bad header byte, a path with spaces) before sending it.
          const code = (err as NodeJS.ErrnoException).code ?? '';
          if (code.startsWith('ERR_')) return 'refused by the HTTP client';
          // A method HTTP does not know is refused at once; the socket may close while the client still writes its body.
          if (!STANDARD_METHODS.has(method) && (code === 'ECONNRESET' || (err as Error).message === 'socket hang up'))
            return 'unknown method: connection closed';
          throw err;
        }
        if (answer.status >= 500 || answer.status < 200) throw new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
        // The cookies here are made up and the mutated bearer tokens wrong: only the real token may write.
        if (answer.status < 300 && isWrite(method, path) && !authorized)
          throw new Error(`a write was accepted without a sign-in: HTTP ${answer.status}`);
        if (answer.status < 400) return undefined;
        if (method === 'HEAD') return `${answer.status}`;
        let error: unknown;
        try {
          error = (JSON.parse(answer.body) as { error?: unknown }).error;
        } catch {
          throw new Error(`HTTP ${answer.status} with a body that is not JSON: ${JSON.stringify(answer.body.slice(0, 100))}`);
        }
        if (typeof error !== 'string' || error.trim() === '')
          throw new Error(`HTTP ${answer.status} without an error message: ${answer.body.slice(0, 200)}`);
        // The field an error names (`state: …`) is its category; sentences such as `no such path /x` count by status alone.
        const field = /^([\w.[\]]{1,40}): /.exec(error)?.[1];
        return field ? `${answer.status} ${field.replace(/\d+/g, 'N')}` : `${answer.status}`;
      });
      if (!authorized && isWrite(method, path)) unauthorizedWrites++;
    }
    assert.ok(unauthorizedWrites > 20, `unauthenticated writes tried: ${unauthorizedWrites}`);
    tally.finish({ minCases: 1000 });
    const health = await send(port, 'GET', '/healthz', {});
    assert.ok(health.status === 200 || health.status === 503, 'still serving');
  });

  it('answers raw garbage on the socket with 400 or a close, and keeps serving', async () => {
    const rnd = fuzzRandom('console raw http');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('console HTTP (raw bytes)');
    const valid = Buffer.from(
      `POST /api/alerts/${ids[3]}/ack HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
    );
    for (let i = 0, n = cases(2_000); i < n; i++) {
      const bytes = m.chance(0.8)
        ? m.mutate(valid, {
            dictionary: ['\r\n', '\r\n\r\n', 'Content-Length: 99999999', 'Transfer-Encoding: chunked', ' HTTP/1.1', '\x00'],
          })
        : m.garbage(2000);
      await tally.checkAsync(
        bytes,
        () =>
          new Promise<string | undefined>((resolve, reject) => {
            const s = connect(port, '127.0.0.1');
            let answer = '';
            const timer = setTimeout(() => (s.destroy(), resolve('no answer to an incomplete request; closed by the client')), 500);
            s.on('data', (c: Buffer) => (answer += c.toString('latin1')));
            s.on('error', () => undefined);
            s.on('close', () => {
              clearTimeout(timer);
              const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
              if (status >= 500) reject(new Error(`HTTP ${status}`));
              else if (status === 0) resolve('closed without an answer');
              else if (status >= 400) resolve(`${status}`);
              else resolve(undefined);
            });
            s.end(bytes);
          }),
      );
    }
    tally.finish({ minCases: 100 });
    const { status } = await send(port, 'GET', '/api/alerts', { authorization: `Bearer ${TOKEN}` });
    assert.equal(status, 200);
    // The raw requests carried no credential: the alert they aimed at is untouched.
    assert.equal((await store.getAlert(ids[3]!))?.state, 'active');
  });
});
