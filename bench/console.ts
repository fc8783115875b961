/**
 * The console under a large fleet: N vehicles (default 500) each storing one reading of
 * every sensor (engine, cargo, speed, rpm, GPS) per second into the operational store, as
 * the detector does; `fleet console` in its own process; the page in headless Chromium.
 * The readings are written here rather than by 500 simulated agents, gateway and
 * detector: on a 2-core machine those saturate the CPU long before the console does,
 * and the figure would be the simulator's.
 *
 * Measured in the page:
 *  - update latency: for every value cell the page redraws, the time from the reading's
 *    event time (stamped as it is stored) to the animation frame after the cell changed:
 *    the console's poll of the store, SSE, and the page's render;
 *  - responsiveness: main-thread long tasks (> 50 ms, PerformanceObserver `longtask`), and
 *    input-to-paint for clicks on the sort headers and keystrokes in the filter box made
 *    every second during the run (the event's timestamp to the frame after its handlers).
 *
 * stdout: one JSON line per measurement window (`"kind": "window"`) and a summary line.
 * stderr: progress.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../cloud/store/sqlite/sqlite-store.js';
import type { Reading } from '../shared/contract/reading.js';
import { launchChromium } from '../test/support/browser.js';
import { freePort, kill, runFleet, sleep, tempDir, waitFor } from '../test/support/harness.js';

const USAGE = `Usage: node dist/bench/console.js [options]

Stores readings of many vehicles, runs \`fleet console\` on that store and measures, in
headless Chromium, how long the page takes to show new readings and how responsive it
stays. Progress on stderr, JSON lines on stdout.

Options:
  --vehicles N     vehicles (default 500; --quick: 100)
  --hz HZ          readings per second of every sensor of every vehicle (default 1)
  --duration S     measured seconds after the page is warm (default 60; --quick: 20)
  --window S       seconds per reported window (default 10)
  --quick          a short run with fewer trucks
  --help           this text`;

const TOKEN = 'bench-console-token';
/** Writes are spread over the second in this many slices, as readings from a fleet would be. */
const SLICES_PER_S = 10;

/**
 * Stands in for the detector: every vehicle drives a circle of its own around the
 * Netherlands, its values wandering in their normal ranges, stored with its own seqs.
 */
function startFeeder(store: SqliteStore, vehicles: number, hz: number): () => void {
  const seqs = new Array<number>(vehicles).fill(0);
  let slice = 0;
  const timer = setInterval(
    () => {
      const now = Date.now();
      const readings: Reading[] = [];
      for (let i = slice % SLICES_PER_S; i < vehicles; i += SLICES_PER_S) {
        const vehicle = `truck-${String(i + 1).padStart(3, '0')}`;
        const t = now / 60_000 + i;
        const r = (sensor: Reading['sensor'], value: number): Reading => ({
          vehicle,
          seq: ++seqs[i]!,
          ts: now,
          clock: 'synced',
          sensor,
          value: Math.round(value * 100) / 100,
          quality: 'good',
        });
        const gps = r('gps', 60 + 20 * Math.sin(t));
        gps.position = {
          lat: 52 + (i % 25) * 0.08 + 0.02 * Math.sin(t),
          lon: 4.5 + Math.floor(i / 25) * 0.08 + 0.02 * Math.cos(t),
          heading: 90,
          fix: '3d',
        };
        readings.push(
          r('engine_temp', 90 + 2 * Math.sin(t * 3)),
          r('container_temp', 5 + Math.sin(t)),
          r('speed', 60 + 20 * Math.sin(t)),
          r('rpm', 1500 + 200 * Math.sin(t)),
          gps,
        );
      }
      void store.write({ received: [{ readings, receivedAt: now }], duplicates: 0, events: [], at: now });
      slice++;
    },
    1000 / hz / SLICES_PER_S,
  );
  return () => clearInterval(timer);
}

interface PageStats {
  latencies: number[];
  longTasks: number[];
  inputs: number[];
}

/** Installed in the page before its own scripts: collects the figures without touching the console's code. */
function instrument(): void {
  const stats: PageStats = { latencies: [], longTasks: [], inputs: [] };
  (window as unknown as { benchStats: PageStats }).benchStats = stats;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) stats.longTasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  const afterPaint = (done: (now: number) => void) => requestAnimationFrame(() => setTimeout(() => done(Date.now()), 0));
  for (const type of ['click', 'keydown']) {
    addEventListener(
      type,
      (e) => {
        const start = performance.timeOrigin + e.timeStamp;
        afterPaint((now) => stats.inputs.push(now - start));
      },
      { capture: true },
    );
  }
  addEventListener('DOMContentLoaded', () => {
    const body = document.querySelector('#vehicles tbody')!;
    new MutationObserver((records) => {
      const stamps = records.map((r) => Number((r.target as HTMLElement).dataset.ts)).filter((ts) => ts > 0);
      afterPaint((now) => {
        for (const ts of stamps) stats.latencies.push(now - ts);
      });
    }).observe(body, { subtree: true, attributes: true, attributeFilter: ['data-ts'] });
  });
}

function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
}

function summarize(s: PageStats) {
  return {
    updates: s.latencies.length,
    latencyMsP50: percentile(s.latencies, 0.5),
    latencyMsP99: percentile(s.latencies, 0.99),
    latencyMsMax: percentile(s.latencies, 1),
    withinOneSecond: s.latencies.length ? Number((s.latencies.filter((l) => l <= 1000).length / s.latencies.length).toFixed(4)) : null,
    longTasks: s.longTasks.length,
    longTaskMsTotal: Math.round(s.longTasks.reduce((a, b) => a + b, 0)),
    longTaskMsMax: percentile(s.longTasks, 1),
    inputs: s.inputs.length,
    inputToPaintMsP50: percentile(s.inputs, 0.5),
    inputToPaintMsMax: percentile(s.inputs, 1),
  };
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      vehicles: { type: 'string' },
      hz: { type: 'string', default: '1' },
      duration: { type: 'string' },
      window: { type: 'string', default: '10' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) return void process.stdout.write(`${USAGE}\n`);
  const vehicles = Number(args.vehicles ?? (args.quick ? 100 : 500));
  const hz = Number(args.hz);
  const duration = Number(args.duration ?? (args.quick ? 20 : 60));
  const windowS = Number(args.window);
  for (const [name, v] of Object.entries({ vehicles, hz, duration, window: windowS })) {
    if (!(v > 0)) throw new Error(`--${name}: must be a positive number`);
  }

  const dir = tempDir('fleet-bench-console-');
  const storePath = join(dir, 'fleet.db');
  const store = new SqliteStore(storePath);
  const log = (line: string) => process.stderr.write(`bench console: ${line}\n`);
  log(`storing ${vehicles} vehicles × 5 sensors at ${hz} Hz; console on ${storePath}`);
  const stopFeeder = startFeeder(store, vehicles, hz);
  // Nothing listens on the MQTT port: online/offline is not what this measures.
  const consoleProc = runFleet(
    [
      'console',
      '--port',
      String(await freePort()),
      '--store',
      storePath,
      '--console-token',
      TOKEN,
      '--mqtt-url',
      `mqtt://127.0.0.1:${await freePort()}`,
    ],
    { FLEET_LOG_LEVEL: 'error' },
  );
  const browser = await launchChromium();
  try {
    const url = await waitFor('the console URL', () => /fleet console: (http:\S+)/.exec(consoleProc.lines.join('\n'))?.[1], 30_000);
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.addInitScript(instrument);
    await page.goto(url);
    await page.fill('#sign-in-user', 'bench');
    await page.fill('#sign-in-password', TOKEN);
    await page.click('#sign-in-form button[type=submit]');
    log('page open; waiting for every vehicle');
    await page.waitForFunction((n) => document.querySelectorAll('#vehicles tbody tr').length >= n, vehicles, {
      timeout: 180_000,
      polling: 1000,
    });
    // Warm-up: the first frames carry the whole fleet at once, which is the page loading, not updating.
    await sleep(5000);
    await page.evaluate(() => {
      const s = (window as unknown as { benchStats: PageStats }).benchStats;
      s.latencies.length = s.longTasks.length = s.inputs.length = 0;
    });

    const all: PageStats = { latencies: [], longTasks: [], inputs: [] };
    const headers = ['speed', 'engine_temp', 'id', 'lastSeen'];
    const started = Date.now();
    let input = 0;
    while (Date.now() - started < duration * 1000) {
      const windowEnd = Math.min(started + duration * 1000, Date.now() + windowS * 1000);
      while (Date.now() < windowEnd) {
        // An operator at work: sort by a column, type a filter, clear it.
        const step = input++ % 3;
        if (step === 0) await page.click(`#vehicles th[data-sort="${headers[input % headers.length]}"]`);
        else if (step === 1) await page.type('#vehicle-filter', '1');
        else await page.fill('#vehicle-filter', '');
        await sleep(1000);
      }
      const stats = await page.evaluate(() => {
        const s = (window as unknown as { benchStats: PageStats }).benchStats;
        const copy = { latencies: s.latencies.splice(0), longTasks: s.longTasks.splice(0), inputs: s.inputs.splice(0) };
        return copy;
      });
      for (const key of ['latencies', 'longTasks', 'inputs'] as const) all[key].push(...stats[key]);
      const line = { kind: 'window', vehicles, hz, atS: Math.round((Date.now() - started) / 1000), ...summarize(stats) };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      log(`${line.atS} s: ${line.updates} updates, p50 ${line.latencyMsP50} ms, p99 ${line.latencyMsP99} ms, ${line.longTasks} long tasks`);
    }
    process.stdout.write(`${JSON.stringify({ kind: 'summary', vehicles, hz, durationS: duration, ...summarize(all) })}\n`);
  } finally {
    await browser.close();
    await kill(consoleProc);
    stopFeeder();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench console: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
