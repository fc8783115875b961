/**
 * The console under a large fleet: N vehicles (500 and 5,000 by default) each storing one
 * reading of every sensor (engine, cargo, speed, rpm, GPS) per second into the operational
 * store, as the detector does; `fleet console` in its own process; the page in headless
 * Chromium. The readings are written here rather than by simulated agents, gateway and
 * detector: on a 2-core machine those saturate the CPU long before the console does, and the
 * figure would be the simulator's.
 *
 * Measured in the page:
 *  - update to paint: from a reading's event time (stamped as it is stored) until the frame
 *    in which the page drew it is produced: a map marker moved (the map tells of what it
 *    drew through its inspector, `window.fleetMap`), or a value cell of a row in view of the
 *    vehicle list changed (rows that just came into view are not counted: they show a
 *    reading, not an update). It covers the console's poll of the store, SSE and the page's
 *    render;
 *  - input to paint: an operator's input (a click on a sort header or on a vehicle in the
 *    list, a keystroke in the filter box, one a second) from the event's timestamp to the
 *    frame after its handlers ran, which shows the result;
 *  - the main thread: long tasks (> 50 ms, PerformanceObserver `longtask`), and where its
 *    time went (Chromium's `Performance.getMetrics` over CDP: script, style, layout).
 *
 * stdout: one JSON figure line per figure and fleet size. stderr: progress.
 */
import { readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { POLL_MS } from '../cloud/console/console-server.js';
import { SqliteStore } from '../cloud/store/sqlite/sqlite-store.js';
import type { Reading } from '../shared/contract/reading.js';
import { launchChromium } from '../test/support/browser.js';
import { freePort, kill, runFleet, tempDir, waitFor } from '../test/support/harness.js';
import { emit, percentile, round, runPart, sleep } from './support.js';

const USAGE = `Usage: node dist/bench/console.js [options]

Stores readings of many vehicles, runs \`fleet console\` on that store and measures, in
headless Chromium, how long the page takes to show new readings and to answer input.
Progress on stderr, one JSON line per figure on stdout.

Options:
  --vehicles LIST  fleet sizes measured one after the other (default 500,5000)
  --hz HZ          readings per second of every sensor of every vehicle (default 1)
  --duration S     measured seconds per fleet size after the page is warm (default 60; --quick: 10)
  --trace FILE     also record a Chromium performance trace of 5 s of the last fleet size
                   into FILE, and print the renderer main thread's busiest events on stderr
  --quick          a shorter measurement
  --help           this text
`;

const TOKEN = 'bench-console-token';
/** Writes are spread over the second in this many slices, as readings from a fleet would be. */
const SLICES_PER_S = 10;
/** The issue's floors: update to paint and input to paint, p99. */
const UPDATE_FLOOR_MS = 250;
const INPUT_FLOOR_MS = 100;
/** Vehicles are spread on a square grid this far apart (degrees). */
const GRID_STEP = 0.03;

/**
 * Stands in for the detector: every vehicle drives a circle of its own around the
 * Netherlands, its values wandering in their normal ranges, stored with its own seqs.
 */
function startFeeder(store: SqliteStore, vehicles: number, hz: number): () => void {
  const seqs = new Array<number>(vehicles).fill(0);
  const side = Math.ceil(Math.sqrt(vehicles));
  let slice = 0;
  const timer = setInterval(
    () => {
      const now = Date.now();
      const readings: Reading[] = [];
      for (let i = slice % SLICES_PER_S; i < vehicles; i += SLICES_PER_S) {
        const vehicle = `truck-${String(i + 1).padStart(4, '0')}`;
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
          lat: 51.5 + (i % side) * GRID_STEP + 0.01 * Math.sin(t),
          lon: 4 + Math.floor(i / side) * GRID_STEP + 0.01 * Math.cos(t),
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
  map: number[];
  list: number[];
  /** From a reading's event time to its arrival in the page: the console's share of the update latency. */
  arrivals: number[];
  longTasks: number[];
  inputs: number[];
}

interface FleetMapInspector {
  onDraw(listener: (drawn: { id: string; ts: number }[]) => void): void;
}

type BenchWindow = Window & { benchStats: PageStats; fleetMap?: FleetMapInspector };

/** Installed in the page before its own scripts: collects the figures without touching the console's code. */
function instrument(): void {
  const stats: PageStats = { map: [], list: [], arrivals: [], longTasks: [], inputs: [] };
  const w = window as unknown as BenchWindow;
  w.benchStats = stats;
  // Every fifth frame of values is read a second time here: enough samples, little of the page's time.
  const NativeEventSource = EventSource;
  let frames = 0;
  window.EventSource = class extends NativeEventSource {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(url, init);
      this.addEventListener('values', (e) => {
        if (frames++ % 5 !== 0) return;
        const now = Date.now();
        for (const { values } of JSON.parse((e as MessageEvent<string>).data) as { values: { gps?: { ts: number } } }[]) {
          if (values.gps) stats.arrivals.push(now - values.gps.ts);
        }
      });
    }
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) stats.longTasks.push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  // The frame that shows a change has been produced once a task queued from its animation-frame
  // callbacks runs: a change made in one (the page draws there) waits for that task, any other
  // for the next frame's. The flag stays up for the microtasks of the callback (mutation records).
  let inFrame = false;
  const nativeFrame = requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) =>
    nativeFrame((t) => {
      inFrame = true;
      try {
        callback(t);
      } finally {
        queueMicrotask(() => (inFrame = false));
      }
    });
  const afterPaint = (done: (now: number) => void) => {
    const paint = () => setTimeout(() => done(Date.now()), 0);
    if (inFrame) paint();
    else nativeFrame(paint);
  };
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
      const added = new Set(records.flatMap((r) => [...r.addedNodes]));
      const stamps = records
        .filter(
          (r) =>
            r.type === 'attributes' &&
            r.oldValue !== (r.target as HTMLElement).dataset.ts &&
            !added.has((r.target as HTMLElement).closest('tr')!),
        )
        .map((r) => Number((r.target as HTMLElement).dataset.ts))
        .filter((ts) => ts > 0);
      if (stamps.length > 0) afterPaint((now) => stats.list.push(...stamps.map((ts) => now - ts)));
    }).observe(body, { subtree: true, childList: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-ts'] });
    // Redraws for a status or an alert report the position drawn before: only a new fix counts.
    const lastTs = new Map<string, number>();
    const watchMap = () => {
      if (!w.fleetMap) return void setTimeout(watchMap, 100);
      w.fleetMap.onDraw((drawn) => {
        const stamps = drawn.filter((d) => lastTs.get(d.id) !== d.ts).map((d) => d.ts);
        for (const d of drawn) lastTs.set(d.id, d.ts);
        afterPaint((now) => {
          for (const ts of stamps) stats.map.push(now - ts);
        });
      });
    };
    watchMap();
  });
}

const sorted = (values: number[]) => Float64Array.from(values).sort();

/** CPU seconds a process has used so far (Linux), to tell the console server's share from the page's. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Records 5 s of the page in Chromium's trace format and a JavaScript CPU profile, and logs
 * where the renderer's main thread spent them.
 */
async function trace(browser: Browser, page: Page, cdp: CDPSession, path: string, log: (msg: string) => void): Promise<void> {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.start');
  await sleep(5000);
  const { profile } = await cdp.send('Profiler.stop');
  const interval = (profile.endTime - profile.startTime) / 1000 / (profile.samples?.length ?? 1);
  const selfMs = new Map<string, number>();
  for (const n of profile.nodes) {
    const where = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
    selfMs.set(where, (selfMs.get(where) ?? 0) + (n.hitCount ?? 0) * interval);
  }
  const busiest = [...selfMs].sort((a, b) => b[1] - a[1]).slice(0, 15);
  log(`JavaScript self time in 5 s, ms: ${busiest.map(([w, ms]) => `${w} ${round(ms)}`).join(', ')}`);

  await browser.startTracing(page, {
    path,
    categories: ['devtools.timeline', 'v8', 'blink', 'cc', 'gpu', 'disabled-by-default-devtools.timeline'],
  });
  await sleep(5000);
  const { traceEvents } = JSON.parse((await browser.stopTracing()).toString()) as {
    traceEvents: { name: string; ph: string; pid: number; tid: number; dur?: number; args?: { name?: string } }[];
  };
  const main = traceEvents.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const totals = new Map<string, number>();
  for (const e of traceEvents) {
    if (e.pid !== main?.pid || e.tid !== main.tid || e.ph !== 'X' || !e.dur) continue;
    totals.set(e.name, (totals.get(e.name) ?? 0) + e.dur / 1000);
  }
  const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 20);
  log(
    `trace in ${path}; renderer main thread, ms in 5 s by event (nested events counted in each): ${top.map(([n, ms]) => `${n} ${round(ms)}`).join(', ')}`,
  );
}

/** Main-thread seconds by kind, from Chromium's counters. */
async function mainThreadTimes(cdp: CDPSession) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const get = (name: string) => metrics.find((m) => m.name === name)?.value ?? 0;
  return {
    task: get('TaskDuration'),
    script: get('ScriptDuration'),
    style: get('RecalcStyleDuration'),
    layout: get('LayoutDuration'),
  };
}

/** One fleet size: its store, feeder and console, the page driven for `duration` seconds. */
async function measure(
  vehicles: number,
  hz: number,
  duration: number,
  tracePath: string | undefined,
  log: (msg: string) => void,
): Promise<void> {
  const dir = tempDir('fleet-bench-console-');
  const storePath = join(dir, 'fleet.db');
  const store = new SqliteStore(storePath);
  log(`${vehicles} vehicles × 5 sensors at ${hz} Hz; console on ${storePath}`);
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
    await page.waitForFunction((n) => Number(document.getElementById('vehicle-count')?.textContent) >= n, vehicles, {
      timeout: 180_000,
      polling: 1000,
    });
    // Warm-up: the first frames carry the whole fleet at once, which is the page loading, not updating.
    await sleep(5000);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.evaluate(() => {
      const s = (window as unknown as BenchWindow).benchStats;
      s.map.length = s.list.length = s.arrivals.length = s.longTasks.length = s.inputs.length = 0;
    });
    const before = await mainThreadTimes(cdp);
    const serverBefore = cpuSeconds(consoleProc.child.pid!);
    const benchBefore = cpuSeconds(process.pid);
    const load = [loadavg()[0]!];

    const headers = ['speed', 'engine_temp', 'id', 'lastSeen'];
    const started = Date.now();
    for (let input = 0; Date.now() - started < duration * 1000; input++) {
      // An operator at work: sort by a column, type a filter, clear it, pick a vehicle.
      const step = input % 4;
      if (step === 0) await page.click(`#vehicles th[data-sort="${headers[(input / 4) % headers.length]}"]`);
      else if (step === 1) await page.type('#vehicle-filter', '1');
      else if (step === 2) await page.fill('#vehicle-filter', '');
      else {
        // Where a row is, not which: with the list sorted by a value its rows change places every second.
        const box = (await page.locator('#vehicles tbody').boundingBox())!;
        await page.mouse.click(box.x + 40, box.y + 15 + 30 * (input % 7));
      }
      await sleep(1000);
    }
    const seconds = (Date.now() - started) / 1000;
    const after = await mainThreadTimes(cdp);
    const server = (cpuSeconds(consoleProc.child.pid!) - serverBefore) / seconds;
    const feeder = (cpuSeconds(process.pid) - benchBefore) / seconds;
    load.push(loadavg()[0]!);
    const stats = await page.evaluate(() => (window as unknown as BenchWindow).benchStats);
    report(vehicles, hz, seconds, stats, before, after, { server, feeder }, load);
    if (tracePath) await trace(browser, page, cdp, tracePath, log);
  } finally {
    await browser.close();
    await kill(consoleProc);
    stopFeeder();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(
  vehicles: number,
  hz: number,
  seconds: number,
  stats: PageStats,
  before: Awaited<ReturnType<typeof mainThreadTimes>>,
  after: Awaited<ReturnType<typeof mainThreadTimes>>,
  cpu: { server: number; feeder: number },
  load: number[],
): void {
  const conditions = `${vehicles.toLocaleString('en')} vehicles × 5 sensors at ${hz} Hz, ${round(seconds)} s; 1-minute load ${load.map((l) => round(l, 1)).join(' → ')}`;
  const fleet = `${vehicles.toLocaleString('en')} vehicles`;
  const arrivals = sorted(stats.arrivals);
  const arrived = `arrival in the page p50 ${round(percentile(arrivals, 0.5))} ms, p99 ${round(percentile(arrivals, 0.99))} ms`;
  for (const [what, samples] of [
    ['map', stats.map],
    ['vehicle list', stats.list],
  ] as const) {
    const s = sorted(samples);
    emit('console', {
      figure: `update to paint p99, ${what}, ${fleet}`,
      value: round(percentile(s, 0.99)),
      unit: 'ms',
      floor: UPDATE_FLOOR_MS,
      floorOp: '<=',
      note: `${conditions}; p50 ${round(percentile(s, 0.5))} ms, ${s.length.toLocaleString('en')} updates${what === 'vehicle list' ? ' (rows in view)' : ''}; ${arrived}`,
    });
  }
  const inputs = sorted(stats.inputs);
  emit('console', {
    figure: `input to paint p99, ${fleet}`,
    value: round(percentile(inputs, 0.99)),
    unit: 'ms',
    floor: INPUT_FLOOR_MS,
    floorOp: '<=',
    note: `${conditions}; p50 ${round(percentile(inputs, 0.5))} ms, ${inputs.length} inputs (sort clicks, filter keystrokes, vehicle clicks)`,
  });
  const share = (key: keyof typeof before) => round((100 * (after[key] - before[key])) / seconds);
  emit('console', {
    figure: `main thread busy, ${fleet}`,
    value: share('task'),
    unit: '%',
    note: `${conditions}; script ${share('script')} %, style ${share('style')} %, layout ${share('layout')} %; ${stats.longTasks.length} long tasks, longest ${round(Math.max(0, ...stats.longTasks))} ms`,
  });
  emit('console', {
    figure: `console server CPU, ${fleet}`,
    value: round(100 * cpu.server),
    unit: '% of a core',
    note: `${conditions}; polls the store every ${POLL_MS} ms, one SSE frame per poll; the bench's feeder (the detector's writes) and driver ${round(100 * cpu.feeder)} % of a core`,
  });
}

runPart(
  'console',
  USAGE,
  (quick) => (quick ? 240_000 : 480_000),
  async (o, log) => {
    const sizes = String(o.values.vehicles ?? '500,5000')
      .split(',')
      .map(Number);
    const hz = Number(o.values.hz ?? 1);
    const duration = Number(o.values.duration ?? (o.quick ? 10 : 60));
    for (const [name, v] of [...sizes.map((s) => ['vehicles', s] as const), ['hz', hz] as const, ['duration', duration] as const]) {
      if (!(v > 0)) throw new Error(`--${name}: must be a positive number`);
    }
    for (const [i, vehicles] of sizes.entries()) {
      await measure(vehicles, hz, duration, i === sizes.length - 1 ? (o.values.trace as string | undefined) : undefined, log);
    }
  },
  { vehicles: { type: 'string' }, hz: { type: 'string' }, duration: { type: 'string' }, trace: { type: 'string' } },
);
