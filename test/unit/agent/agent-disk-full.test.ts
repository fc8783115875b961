import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { Agent } from '../../../agent/agent.js';
import { agentConfigSchema, agentOptions } from '../../../agent/agent-config.js';
import { SimulatedDriverAlert } from '../../../agent/driver-alert.js';
import type { Sensor } from '../../../agent/sensor.js';
import type { Sample, SensorId } from '../../../shared/contract/reading.js';
import { createLogger } from '../../../shared/log.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-agent-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 5, 1, 8);

/** A sensor the test drives by hand. */
class ManualSensor implements Sensor {
  readonly name = 'manual';
  private emit?: (s: Sample) => void;
  private n = 0;
  async start(emit: (s: Sample) => void): Promise<void> {
    this.emit = emit;
  }
  async stop(): Promise<void> {}
  health() {
    return { state: 'ok' as const, rejected: 0 };
  }
  take(...sensors: SensorId[]): void {
    for (const sensor of sensors) {
      const s: Sample = { ts: T0 + this.n * 100, clock: 'synced', sensor, value: this.n++, quality: 'good' };
      if (sensor === 'gps') s.position = { lat: 52.5, lon: 13.4, heading: 0, fix: '3d' };
      this.emit!(s);
    }
  }
}

const diskFull = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');

describe('agent with a full disk', () => {
  let agent: Agent;
  let sensor: ManualSensor;
  let dataDir: string;

  beforeEach(async () => {
    dataDir = mkdtempSync(join(dir, 'agent-'));
    const config = agentConfigSchema.parse({
      vehicle: 'full-1',
      // Nothing listens there: these tests are about the buffer, not the link.
      mqttUrl: 'mqtt://127.0.0.1:9',
      dataDir,
      opsPort: -1,
      // The test commits by hand.
      commitIntervalMs: 10_000,
      memoryBufferMaxReadings: 4,
      edgeRules: false,
    });
    sensor = new ManualSensor();
    agent = new Agent(agentOptions(config), [sensor], new SimulatedDriverAlert(), createLogger('test', { level: 'silent' }));
    await agent.start();
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await agent.stop();
  });

  const metric = async (name: string) => {
    const m = (await agent.registry.getSingleMetric(name)!.get()).values;
    return m.map((v) => [v.labels, v.value]);
  };

  it('keeps running, holds the samples, reports degraded health, then commits them with contiguous seqs', async () => {
    sensor.take('speed', 'engine_temp');
    agent.commit();
    const append = vi.spyOn(agent.buffer, 'append').mockImplementation(() => {
      throw diskFull();
    });
    sensor.take('rpm', 'container_temp');
    agent.commit();
    sensor.take('speed');
    agent.commit();
    assert.equal(append.mock.calls.length, 2);
    const health = agent.health();
    assert.equal(health.ok, true, 'degraded, not down');
    assert.deepEqual(health.storage, {
      state: 'degraded',
      detail: 'buffer disk full: 3 samples held in memory',
      held: 3,
      dropped: 0,
      writeErrors: 2,
    });
    assert.deepEqual(await metric('fleet_agent_buffer_write_errors_total'), [[{ vehicle: 'full-1', code: 'SQLITE_FULL' }, 2]]);

    append.mockRestore();
    agent.commit();
    const readings = agent.buffer.after(0, 100);
    assert.deepEqual(
      readings.map((r) => [r.seq, r.sensor]),
      [
        [1, 'speed'],
        [2, 'engine_temp'],
        [3, 'rpm'],
        [4, 'container_temp'],
        [5, 'speed'],
      ],
    );
    assert.equal(agent.health().storage.state, 'ok');
  });

  it('drops the lowest-priority samples past memoryBufferMaxReadings, and counts them', async () => {
    vi.spyOn(agent.buffer, 'append').mockImplementation(() => {
      throw diskFull();
    });
    sensor.take('gps', 'engine_temp', 'gps', 'speed', 'container_temp', 'gps');
    agent.commit();
    assert.deepEqual(agent.health().storage, {
      state: 'degraded',
      detail: 'buffer disk full: 4 samples held in memory',
      held: 4,
      dropped: 2,
      writeErrors: 1,
    });
    assert.deepEqual(await metric('fleet_agent_samples_dropped_total'), [[{ vehicle: 'full-1', reason: 'disk_full' }, 2]]);
    vi.restoreAllMocks();
    agent.commit();
    assert.deepEqual(
      agent.buffer.after(0, 100).map((r) => r.sensor),
      ['engine_temp', 'speed', 'container_temp', 'gps'],
      'the two older gps went',
    );
  });

  it('does not swallow what is not a storage failure', () => {
    vi.spyOn(agent.buffer, 'append').mockImplementation(() => {
      throw new TypeError('a bug');
    });
    sensor.take('speed');
    assert.throws(() => agent.commit(), TypeError);
  });
});
