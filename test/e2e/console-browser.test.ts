import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../cloud/console/passwords.js';
import type { StoredAlert } from '../../cloud/store/stored-alert.js';
import { launchChromium } from '../support/browser.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { ROOT } from '../support/paths.js';

const TOKEN = 'console-test-token';
const PASSWORD = 'correct horse battery staple';
const SCREENSHOT = join(ROOT, 'docs', 'console.png');
/** 2-second windows and the default 105 °C limit: the simulated overheat crosses it about 35 s after onset. */
const FAST_RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

/** A vehicle as the map drew it (its inspector, `window.fleetMap`): container pixels and the colour at its centre. */
interface DrawnVehicle {
  id: string;
  level: string;
  x: number;
  y: number;
  colour: string;
}
type MapWindow = Window & { fleetMap?: { vehicles(): DrawnVehicle[] } };

/**
 * `fleet demo` with 9 trucks in its process and a tenth as its own `fleet agent` process,
 * so that one can be SIGKILLed and its Last Will seen; the page in Debian's Chromium.
 */
describe('the console in a browser, against a demo with 10 trucks', () => {
  const dir = tempDir('fleet-console-browser-');
  let demo: Proc;
  let agent: Proc;
  let browser: Browser;
  let page: Page;
  let url: string;
  let overheat: StoredAlert;

  const api = <T>(path: string) => getJson<T>(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  /** Waits until the map has drawn the vehicle as `level`, and returns it as drawn. */
  const drawnAs = async (id: string, level: string) => {
    const handle = await page.waitForFunction(
      ([id, level]) => (window as MapWindow).fleetMap?.vehicles().find((v) => v.id === id && v.level === level),
      [id, level],
      { timeout: 2000 },
    );
    return (await handle.jsonValue()) as DrawnVehicle;
  };

  beforeAll(async () => {
    const [mqttPort, consolePort] = [await freePort(), await freePort()];
    const rulesFile = join(dir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify(FAST_RULES));
    demo = runFleet(
      [
        'demo',
        '--trucks',
        '9',
        '--port',
        String(mqttPort),
        '--console-port',
        String(consolePort),
        '--data-dir',
        dir,
        '--rules-file',
        rulesFile,
        '--overheat-truck',
        '3',
        '--overheat-at',
        '3',
        '--console-token',
        TOKEN,
      ],
      { FLEET_CONSOLE_USERS: `alice:${await hashPassword(PASSWORD)}` },
    );
    url = await waitFor('the console URL', () => /fleet console: (http:\S+)/.exec(demo.lines.join('\n'))?.[1], 20_000);
    agent = runFleet([
      'agent',
      '--vehicle',
      'truck-10',
      '--mqtt-url',
      `mqtt://127.0.0.1:${mqttPort}`,
      '--data-dir',
      join(dir, 'truck-10'),
      '--ops-port',
      '-1',
      '--edge-rules',
      'false',
      '--sim-seed',
      '10',
    ]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  afterAll(async () => {
    await browser?.close();
    if (agent) await kill(agent, 'SIGKILL');
    if (demo) await kill(demo);
  });

  it('asks for a sign-in, then lists 10 vehicles in the table and on the map', async () => {
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
    await page.goto(url);
    await page.locator('#sign-in').waitFor({ state: 'visible', timeout: 5000 });
    await page.fill('#sign-in-user', 'alice');
    await page.fill('#sign-in-password', 'wrong password');
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#sign-in-error').waitFor({ state: 'visible', timeout: 5000 });
    assert.match(await page.locator('#sign-in-error').innerText(), /not recognised/);
    await page.fill('#sign-in-password', PASSWORD);
    errors.length = 0; // the refused sign-in's 401 was the point of the step above
    await page.click('#sign-in-form button[type=submit]');
    await page.locator('#user', { hasText: 'signed in as alice' }).waitFor({ timeout: 5000 });

    const ids = Array.from({ length: 10 }, (_, i) => `truck-${String(i + 1).padStart(2, '0')}`);
    await page.waitForFunction(
      (n) => document.querySelectorAll('#vehicles tbody tr').length === n && (window as MapWindow).fleetMap?.vehicles().length === n,
      10,
      { timeout: 15_000 },
    );
    assert.deepEqual(await page.$$eval('#vehicles tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.vehicle)), ids);
    const drawn = await page.evaluate(() => (window as MapWindow).fleetMap!.vehicles());
    assert.deepEqual(drawn.map((v) => v.id).sort(), ids);
    const box = (await page.locator('#map').boundingBox())!;
    assert.ok(
      drawn.every((v) => v.x >= 0 && v.y >= 0 && v.x <= box.width && v.y <= box.height),
      'every marker within the map',
    );
    await page.waitForFunction(
      () => [...document.querySelectorAll('#vehicles tbody tr .status')].every((s) => s.textContent === 'online'),
      null,
      { timeout: 10_000 },
    );
    // Live values arrive without a reload: the engine cell of a truck changes its reading time.
    const engine = page.locator('tr[data-vehicle="truck-01"] td[data-ts]').nth(1);
    const firstTs = await engine.getAttribute('data-ts');
    await page.waitForFunction(
      (ts) => document.querySelectorAll('tr[data-vehicle="truck-01"] td[data-ts]')[1]?.getAttribute('data-ts') !== ts,
      firstTs,
      { timeout: 5000 },
    );
    assert.deepEqual(errors, [], 'no script errors and nothing refused by the content security policy');
  });

  it('shows an injected overheat as a new alert within 3 s, with a cue, and charts it against its threshold', async () => {
    const row = page.locator('#alerts tbody tr[data-alert-id^="truck-03.engine-overheat."]');
    await row.waitFor({ timeout: 75_000 });
    const shownAt = Date.now();
    const id = (await row.getAttribute('data-alert-id'))!;
    overheat = (await api<StoredAlert>(`/api/alerts/${encodeURIComponent(id)}`)).body;
    const latency = shownAt - overheat.closedAt;
    process.stdout.write(`# console: alert ${id} on the page ${latency} ms after its window closed\n`);
    assert.ok(latency < 3000, `shown ${latency} ms after the window closed`);
    assert.equal(await row.getAttribute('data-state'), 'active');
    assert.match(await row.innerText(), /critical[\s\S]*truck-03[\s\S]*engine-overheat[\s\S]*vs 105[\s\S]*live[\s\S]*active/);
    assert.match(await page.locator('#cue').innerText(), /New critical alert: truck-03 engine-overheat/);
    const marker = await drawnAs('truck-03', 'critical');
    assert.equal(marker.colour, '#c62828', 'drawn in the critical colour');

    // A vehicle opens from the list and from its marker on the map.
    await page.click('#vehicles tbody tr[data-vehicle="truck-01"]');
    await page.locator('#detail-id', { hasText: 'truck-01' }).waitFor({ timeout: 5000 });
    const box = (await page.locator('#map').boundingBox())!;
    const now = await drawnAs('truck-03', 'critical'); // where it is now: trucks move
    await page.mouse.click(box.x + now.x, box.y + now.y);
    await page.locator('#detail-id', { hasText: 'truck-03' }).waitFor({ timeout: 5000 });
    await page.locator('#vehicles tbody tr.selected[data-vehicle="truck-03"]').waitFor({ timeout: 2000 });
    await page.locator('#charts .chart[data-sensor="engine_temp"] canvas').waitFor({ timeout: 5000 });
    await page.locator(`#detail-alerts tr[data-alert-id="${id}"]`).waitFor({ timeout: 5000 });
    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it('acknowledges it under the signed-in name, and the state survives a reload', async () => {
    const selector = `#alerts tbody tr[data-alert-id="${overheat.id}"]`;
    await page.click(`${selector} button.ack`);
    await page.locator(`${selector}[data-state="acknowledged"]`).waitFor({ timeout: 5000 });
    const stored = (await api<StoredAlert>(`/api/alerts/${encodeURIComponent(overheat.id)}`)).body;
    assert.equal(stored.state, 'acknowledged');
    assert.equal(stored.ackedBy, 'alice');
    assert.ok(stored.ackedAt! >= overheat.raisedAt);

    await page.reload();
    await page.locator(`${selector}[data-state="acknowledged"]`).waitFor({ timeout: 10_000 });
    assert.match(await page.locator(selector).innerText(), /acked by alice/);
    assert.equal(await page.locator(selector).count(), 1, 'one row per episode');
    assert.equal(await page.locator('#sign-in').isVisible(), false, 'the session outlives the reload');
  });

  it('turns a SIGKILLed agent offline in the list (Last Will)', async () => {
    await kill(agent, 'SIGKILL');
    const status = page.locator('#vehicles tr[data-vehicle="truck-10"] .status');
    await page.waitForFunction(
      () => document.querySelector('#vehicles tr[data-vehicle="truck-10"] .status')?.textContent === 'offline',
      null,
      { timeout: 10_000 },
    );
    assert.equal(await status.innerText(), 'offline');
    await drawnAs('truck-10', 'offline');
    assert.equal(await page.locator('#vehicles tbody .status', { hasText: 'online' }).count(), 9);
  });

  it('refuses to acknowledge without a sign-in, or from another site, and names bad input', async () => {
    const path = `/api/alerts/${encodeURIComponent(overheat.id)}/clear`;
    const anonymous = await fetch(`${url}${path}`, { method: 'POST' });
    assert.equal(anonymous.status, 401);
    assert.match(((await anonymous.json()) as { error: string }).error, /sign in/);

    const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const crossSite = await fetch(`${url}${path}`, { method: 'POST', headers: { cookie, origin: 'http://evil.example' } });
    assert.equal(crossSite.status, 403);
    assert.equal(
      (await api<StoredAlert>(`/api/alerts/${encodeURIComponent(overheat.id)}`)).body.state,
      'acknowledged',
      'refused requests change nothing',
    );

    const badSignIn = await fetch(`${url}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'alice' }),
    });
    assert.equal(badSignIn.status, 400);
    assert.match(((await badSignIn.json()) as { error: string }).error, /^password: /);
    assert.equal((await fetch(`${url}/api/vehicles`)).status, 401, 'reads need a sign-in too');
  });
});
