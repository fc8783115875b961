import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { sinkRecord } from '../../gateway/sink.js';
import { alertId, type Alert } from '../../shared/contract/alert.js';
import type { Reading } from '../../shared/contract/reading.js';
import { StreamLog } from '../../shared/stream-log.js';
import { freePort } from './harness.js';

/** When the fixture alert's episode began: a fixed instant, so expected values can be written down. */
export const ALERT_T = Date.UTC(2026, 0, 5, 10);

/** A live overheat alert of `vehicle` (rule `hot`, 110 against 105), as the contract carries it. */
export function hotAlert(vehicle = 'truck-1', overrides: Partial<Alert> = {}): Alert {
  return {
    id: alertId(vehicle, 'hot', ALERT_T),
    vehicle,
    rule: 'hot',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart: ALERT_T,
    windowStart: ALERT_T,
    windowEnd: ALERT_T + 10_000,
    observed: 110,
    expected: 105,
    message: 'engine_temp mean 110 above 105',
    live: true,
    driver: true,
    raisedAt: ALERT_T + 10_010,
    closedAt: ALERT_T + 10_005,
    ...overrides,
  };
}

/** Two seconds of a boiling engine (140 °C) as a gateway would have appended them to the embedded stream just now. */
export function appendBoilingEngine(streamPath: string, vehicle: string): void {
  const now = Date.now();
  const readings: Reading[] = Array.from({ length: 40 }, (_, j) => ({
    vehicle,
    seq: 1_000_000 + j,
    ts: now - 2000 + j * 50,
    clock: 'synced',
    sensor: 'engine_temp',
    value: 140,
    quality: 'good',
  }));
  const stream = new StreamLog(streamPath);
  stream.append([sinkRecord({ vehicle, headTs: now, readings }, now)]);
  stream.close();
}

const RULES = { windowMs: 1000, rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }] };

/**
 * An embedded stream holding three seconds of an overheating engine for each vehicle, and a
 * rules file that makes one live alert of each: the input for the alert delivery tests.
 * Returns the paths.
 */
export function overheatingStream(dir: string, prefix: string, vehicles: number): { streamPath: string; rulesFile: string } {
  const rulesFile = join(dir, 'rules.json');
  writeFileSync(rulesFile, JSON.stringify(RULES));
  const streamPath = join(dir, 'stream.db');
  const stream = new StreamLog(streamPath);
  const now = Date.now();
  stream.append(
    Array.from({ length: vehicles }, (_, i) => {
      const vehicle = `${prefix}${i + 1}`;
      const readings: Reading[] = Array.from({ length: 30 }, (_, j) => ({
        vehicle,
        seq: j + 1,
        ts: now - 3000 + j * 100,
        clock: 'synced',
        sensor: 'engine_temp',
        value: 110,
        quality: 'good',
      }));
      return sinkRecord({ vehicle, headTs: now, readings }, now);
    }),
  );
  stream.close();
  return { streamPath, rulesFile };
}

export interface WebhookReceiver {
  url: string;
  /** The Idempotency-Key of every request, in arrival order. */
  received: string[];
  server: Server;
}

/** A slow webhook receiver (150 ms per answer), so a SIGKILL lands while deliveries are under way. */
export async function slowWebhookReceiver(): Promise<WebhookReceiver> {
  const received: string[] = [];
  const server = createServer((req, res) => {
    received.push(String(req.headers['idempotency-key']));
    req.resume();
    setTimeout(() => res.writeHead(204).end(), 150);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/alerts`, received, server };
}
