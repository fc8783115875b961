import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { finished } from 'node:stream/promises';
import { EdgeRules } from '../../agent/edge-rules.js';
import { evalDays } from '../../cloud/eval/eval.js';
import { Detector } from '../../cloud/detector.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { replay } from '../../cloud/replay/replay.js';
import type { SourcedRecord, TelemetrySource } from '../../cloud/sources/source.js';
import type { Alert } from '../../shared/contract/alert.js';
import type { Reading } from '../../shared/contract/reading.js';
import { createLogger } from '../../shared/log.js';
import { DEFAULT_RULES } from '../../shared/rules/default-rules.js';
import type { RuleSet } from '../../shared/rules/rule-set.js';
import { dayReadings, truckDay, type EvalFault } from '../../simulators/truck-day.js';
import { tempDir } from '../support/harness.js';

/**
 * The default rules without the GPS one: a replay CSV carries no positions. Everything else
 * the agent, the cloud and a replay must judge identically, from the same readings.
 */
const RULES: RuleSet = { ...DEFAULT_RULES, rules: DEFAULT_RULES.rules.filter((r) => r.sensor !== 'gps') };
const BATCH = 50;

type Seen = Pick<
  Alert,
  'id' | 'rule' | 'sensor' | 'episodeStart' | 'windowStart' | 'windowEnd' | 'observed' | 'expected' | 'message' | 'driver'
>;
const seen = (a: Alert): Seen => ({
  id: a.id,
  rule: a.rule,
  sensor: a.sensor,
  episodeStart: a.episodeStart,
  windowStart: a.windowStart,
  windowEnd: a.windowEnd,
  observed: a.observed,
  expected: a.expected,
  message: a.message,
  driver: a.driver,
});

const NO_SOURCE: TelemetrySource = { name: 'none', poll: async () => [], commit: async () => undefined, close: async () => undefined };

describe('agent, cloud detector and replay raise the same alerts from the same readings', () => {
  const dir = tempDir();
  const log = createLogger('test', { file: join(dir, 'test.log') });
  afterAll(() => log.flush());

  // A day of each kind the rules must tell apart, from the evaluation's own seed set.
  const faults: EvalFault[] = ['fan_failure', 'cargo_heating', 'stuck_sensor'];
  for (const fault of faults) {
    it(`on a truck-day with a ${fault.replace('_', ' ')}`, async () => {
      const spec = evalDays('tuning', { faultFree: 0, perFault: 1 }).find((d) => d.fault === fault)!;
      const vehicle = `truck-${spec.seed}`;
      const readings: Reading[] = [...dayReadings(truckDay(spec.seed, spec.dayStart, fault), vehicle)].filter((r) => r.sensor !== 'gps');

      // The cloud: batches through the detector's own handling, store and all.
      const detector = new Detector(
        {
          store: new SqliteStore(join(dir, `${fault}.db`)),
          pollIntervalMs: 1000,
          pollMaxRecords: 100,
          channels: [],
          opsHost: '127.0.0.1',
          opsPort: -1,
        },
        RULES,
        NO_SOURCE,
        log,
      );
      const cloud: Alert[] = [];
      for (let i = 0; i < readings.length; i += BATCH) {
        const part = readings.slice(i, i + BATCH);
        const headTs = part.at(-1)!.ts;
        const record: SourcedRecord = {
          offset: i,
          vehicle,
          receivedAt: headTs,
          rebuild: false,
          batch: { vehicle, headTs, readings: part },
        };
        for (const e of await detector.handle([record])) if (e.kind === 'raised') cloud.push(e.alert);
      }
      await detector.stop();

      // The truck: its edge rules over the same readings, as they are committed.
      const cab: Alert[] = [];
      const edge = new EdgeRules(
        RULES,
        (a) => cab.push(a),
        () => undefined,
        log,
      );
      for (let i = 0; i < readings.length; i += BATCH) edge.observe(readings.slice(i, i + BATCH));

      // A replay of the same readings written out as CSV.
      const csv = join(dir, `${fault}.csv`);
      const rules = join(dir, 'rules.json');
      await writeAll(rules, [JSON.stringify(RULES)]);
      await writeAll(
        csv,
        readings.map((r) => `${r.ts},${r.vehicle},${r.sensor},${r.value}`),
      );
      const replayed: Alert[] = [];
      for await (const r of replay({ rulesFile: rules, csvFile: csv })) if (r.record === 'alert') replayed.push(r);

      assert.ok(cloud.length > 0, `the ${fault} day raised no alert: nothing compared`);
      const byId = (a: Seen, b: Seen) => a.id.localeCompare(b.id);
      assert.deepEqual(replayed.map(seen).sort(byId), cloud.map(seen).sort(byId), 'replay and cloud differ');
      assert.deepEqual(
        cab.map(seen).sort(byId),
        cloud
          .filter((a) => a.driver !== false)
          .map(seen)
          .sort(byId),
        'cab and cloud differ',
      );
    });
  }
});

async function writeAll(path: string, lines: string[]): Promise<void> {
  const out = createWriteStream(path);
  for (const line of lines) if (!out.write(`${line}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  out.end();
  await finished(out);
}
