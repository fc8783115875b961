import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { hashPassword } from '../../cloud/console/passwords.js';
import { PgStore } from '../../cloud/store/postgres/pg-store.js';
import type { StoredAlert } from '../../cloud/store/stored-alert.js';
import type { Reading } from '../../shared/contract/reading.js';
import { launchChromium } from '../support/browser.js';
import { freePort, getJson, kill, runFleet, waitFor, type Proc } from '../support/harness.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { storeAlertEvents, testAlert } from '../support/store-contract.js';

const TOKEN = 'console-test-token';
const PASSWORD = 'correct horse battery staple';

/**
 * Two `fleet console` processes on one PostgreSQL, as two instances behind one address, each
 * with a page in Debian's Chromium; the test stands in for the detector and raises an alert.
 */
describe('the console in a browser, two instances on one PostgreSQL', () => {
  let pg: PostgresServer;
  let detector: PgStore;
  const consoles: Proc[] = [];
  const urls: string[] = [];
  let browser: Browser;
  let context: BrowserContext;
  let pages: Page[];

  beforeAll(async () => {
    pg = await startPostgres();
    const store = await pg.createDatabase();
    detector = new PgStore(store);
    await detector.open();
    // No gateway: vehicle status is not what is tested here.
    const mqttUrl = `mqtt://127.0.0.1:${await freePort()}`;
    const users = `alice:${await hashPassword(PASSWORD)}`;
    for (let i = 0; i < 2; i++) {
      const args = ['console', '--port', String(await freePort()), '--store', store, '--mqtt-url', mqttUrl, '--console-token', TOKEN];
      const p = runFleet(args, { FLEET_CONSOLE_USERS: users });
      consoles.push(p);
      urls.push(await waitFor(`console ${i + 1}'s URL`, () => /fleet console: (http:\S+)/.exec(p.lines.join('\n'))?.[1], 20_000));
    }
    browser = await launchChromium();
    // One browser: its cookie for 127.0.0.1 goes to both ports, as to one address.
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    pages = [await context.newPage(), await context.newPage()];
  });

  afterAll(async () => {
    await browser?.close();
    for (const p of consoles) await kill(p);
    await detector?.close();
    await pg?.stop();
  });

  it('signed in on one instance, the page of the other is signed in too', async () => {
    const [a, b] = pages as [Page, Page];
    await a.goto(urls[0]!);
    await a.locator('#sign-in').waitFor({ state: 'visible', timeout: 10_000 });
    await a.fill('#sign-in-user', 'alice');
    await a.fill('#sign-in-password', PASSWORD);
    await a.click('#sign-in-form button[type=submit]');
    await a.locator('#user', { hasText: 'signed in as alice' }).waitFor({ timeout: 10_000 });
    await b.goto(urls[1]!);
    await b.locator('#user', { hasText: 'signed in as alice' }).waitFor({ timeout: 10_000 });
    assert.equal(await b.locator('#sign-in').isVisible(), false);
  });

  it('an alert acknowledged on one page shows as acknowledged on the other within a second', async () => {
    const [a, b] = pages as [Page, Page];
    const alert = testAlert('truck-07', { raisedAt: Date.now(), closedAt: Date.now() });
    await storeAlertEvents(detector, [{ kind: 'raised', alert }], Date.now());
    const row = `#alerts tbody tr[data-alert-id="${alert.id}"]`;
    for (const page of pages) await page.locator(`${row}[data-state="active"]`).waitFor({ timeout: 10_000 });

    await a.click(`${row} button.ack`);
    await b.locator(`${row}[data-state="acknowledged"]`).waitFor({ timeout: 10_000 });
    const shownAt = Date.now();
    const stored = (
      await getJson<StoredAlert>(`${urls[1]}/api/alerts/${encodeURIComponent(alert.id)}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).body;
    assert.equal(stored.ackedBy, 'alice');
    const latency = shownAt - stored.ackedAt!;
    process.stdout.write(`# console: acknowledgement on the other instance's page ${latency} ms after it was made\n`);
    assert.ok(latency <= 1000, `shown ${latency} ms after the acknowledgement`);
    assert.match(await b.locator(row).innerText(), /acked by alice/);
  });

  it('lists 300 vehicles with only the rows in view in the page, finds any by scrolling or filtering, and maps them all', async () => {
    const page = pages[0]!;
    const now = Date.now();
    const readings: Reading[] = [];
    for (let i = 0; i < 300; i++) {
      const base = { vehicle: `van-${String(i + 1).padStart(3, '0')}`, ts: now, clock: 'synced', quality: 'good' } as const;
      readings.push(
        { ...base, seq: 1, sensor: 'speed', value: 50 },
        {
          ...base,
          seq: 2,
          sensor: 'gps',
          value: 50,
          position: { lat: 52 + (i % 17) * 0.03, lon: 5 + Math.floor(i / 17) * 0.03, heading: 0, fix: '3d' },
        },
      );
    }
    await detector.write({ received: [{ readings, receivedAt: now }], duplicates: 0, events: [], at: now });

    await page.locator('#vehicle-count', { hasText: '300' }).waitFor({ timeout: 10_000 });
    const rows = () => page.$$eval('#vehicles tbody tr', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.vehicle));
    const inView = await rows();
    assert.equal(inView[0], 'van-001');
    assert.ok(inView.length < 100, `${inView.length} rows in the page`);

    await page.locator('#vehicles-panel .scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.locator('#vehicles tbody tr[data-vehicle="van-300"]').waitFor({ timeout: 5000 });
    assert.ok(await page.locator('#vehicles tbody tr[data-vehicle="van-300"]').isVisible());

    await page.fill('#vehicle-filter', 'van-150');
    await page.waitForFunction(() => document.querySelectorAll('#vehicles tbody tr').length === 1, null, { timeout: 5000 });
    assert.deepEqual(await rows(), ['van-150']);

    type MapWindow = Window & { fleetMap?: { vehicles(): { id: string }[] } };
    await page.waitForFunction(() => (window as MapWindow).fleetMap?.vehicles().length === 300, null, { timeout: 5000 });
  });
});
