import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parseAlert, type Alert } from '../shared/contract/alert.js';
import type { EncodeOptions } from '../shared/contract/codec.js';
import type { Logger } from '../shared/log.js';
import { createRegistry, startOpsServer } from '../shared/ops-server.js';
import type { Synchronous } from '../shared/sqlite.js';
import type { RuleSet } from '../shared/rules/rule-set.js';
import { ReadingBuffer } from './buffer.js';
import { DeviceClock, type DeviceClockOptions, type StampedSample, type Sync } from './device-clock.js';
import { EdgeRules } from './edge-rules.js';
import type { DriverAlert } from './driver-alert.js';
import { AgentLink } from './link.js';
import { Publisher } from './publisher.js';
import type { Sensor, SensorState } from './sensor.js';

export interface AgentOptions {
  vehicle: string;
  mqttUrl: string;
  username?: string;
  password?: string;
  bufferPath: string;
  bufferMaxBytes: number;
  synchronous: Synchronous;
  /** Samples are committed together at this interval: one fsync for many readings. */
  commitIntervalMs: number;
  batchMaxReadings: number;
  lingerMs: number;
  maxInflight: number;
  keepaliveS: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  encoding: EncodeOptions;
  /** Rules evaluated on the truck itself, so the cab is warned with no network; none to leave it to the cloud. */
  edgeRules?: RuleSet;
  /** On a deliberate stop, keep sending this long so a clean stop leaves little behind. */
  drainOnStopMs: number;
  /** Whether the system clock can be trusted from boot, and how to learn when it can. */
  clock: DeviceClockOptions;
  /** Ops endpoint (/healthz, /metrics); port -1 turns it off (e.g. many simulated agents in one process). */
  opsHost: string;
  opsPort: number;
}

export const AGENT_VERSION = '0.1.0';

/**
 * One truck's agent: sensors → durable buffer → gateway, and alerts back to the cab.
 * The order of duties is the guarantee: commit first, publish from the commit, delete on PUBACK.
 */
export class Agent {
  readonly buffer: ReadingBuffer;
  readonly link: AgentLink;
  readonly clock: DeviceClock;
  private readonly publisher: Publisher;
  private pending: StampedSample[] = [];
  private commitTimer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private ops?: Server;
  readonly registry: Registry;
  private readonly metrics: AgentMetrics;
  private stopped = false;
  private readonly edge?: EdgeRules;

  constructor(
    readonly opts: AgentOptions,
    private readonly sensors: Sensor[],
    readonly driverAlert: DriverAlert,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.registry = registry ?? createRegistry('agent');
    this.buffer = new ReadingBuffer({
      path: opts.bufferPath,
      vehicle: opts.vehicle,
      maxBytes: opts.bufferMaxBytes,
      synchronous: opts.synchronous,
    });
    this.clock = new DeviceClock(opts.clock);
    this.link = new AgentLink(
      {
        url: opts.mqttUrl,
        vehicle: opts.vehicle,
        username: opts.username,
        password: opts.password,
        keepaliveS: opts.keepaliveS,
        reconnectBaseMs: opts.reconnectBaseMs,
        reconnectMaxMs: opts.reconnectMaxMs,
        maxInflight: opts.maxInflight,
      },
      log,
      () => this.statusDetail(),
    );
    this.publisher = new Publisher(
      {
        vehicle: opts.vehicle,
        batchMaxReadings: opts.batchMaxReadings,
        lingerMs: opts.lingerMs,
        maxInflight: opts.maxInflight,
        encoding: opts.encoding,
        holdUnsynced: () => this.clock.holding(),
      },
      this.buffer,
      this.link,
      log,
    );
    this.metrics = agentMetrics(this.registry);
    this.publisher.onAck = (readings) => this.metrics.acked.inc({ vehicle: opts.vehicle }, readings);
    this.metrics.agents.add(this);
    this.link.on('alert', (payload) => void this.onAlert(payload));
    this.clock.on('synced', (sync: Sync) => this.onClockSynced(sync));
    this.clock.on('release', () => {
      this.log.warn({ afterMs: opts.clock.holdMs }, 'no clock sync yet: sending unsynced readings with the system time');
      this.publisher.notify();
    });
    if (opts.edgeRules) {
      this.edge = new EdgeRules(opts.edgeRules, (alert) => void this.showAlert(alert), (id) => void this.driverAlert.clear(id), log);
    }
  }

  async start(): Promise<void> {
    const { opts } = this;
    this.log.info({ buffered: this.buffer.stats().readings, nextSeq: this.buffer.stats().nextSeq }, 'agent starting');
    this.clock.start();
    this.log.info(this.clock.status(), this.clock.synced() ? 'clock trusted' : 'clock not synced: readings wait for GPS or NTP time');
    for (const sensor of this.sensors) await sensor.start((s) => this.pending.push(this.clock.stamp(s)));
    this.commitTimer = setInterval(() => this.commit(), opts.commitIntervalMs);
    this.statusTimer = setInterval(() => this.link.publishStatus(), 10_000);
    this.statusTimer.unref();
    this.link.start();
    this.publisher.notify();
    if (opts.opsPort >= 0) {
      this.ops = await startOpsServer(opts.opsHost, opts.opsPort, this.registry, () => this.health());
    }
  }

  /** Commits what the sensors produced since the last commit, then lets the publisher know. */
  commit(): void {
    if (this.pending.length === 0) return;
    const samples = this.pending;
    this.pending = [];
    const readings = this.buffer.append(samples);
    this.edge?.observe(readings);
    this.metrics.committed.inc({ vehicle: this.opts.vehicle }, samples.length);
    this.publisher.notify();
  }

  health() {
    const stats = this.buffer.stats();
    const sensors = Object.fromEntries(this.sensors.map((s) => [s.name, s.health()]));
    return {
      ok: Object.values(sensors).every((h) => h.state !== 'down'),
      vehicle: this.opts.vehicle,
      connected: this.link.connected,
      buffered: stats.readings,
      evicted: stats.evicted,
      nextSeq: stats.nextSeq,
      inflight: this.publisher.inflightCount(),
      clock: this.clock.status(),
      sensors,
    };
  }

  /** Stops sampling and commits what was sampled; the link keeps draining the buffer. */
  async stopSensors(): Promise<void> {
    clearInterval(this.commitTimer);
    for (const sensor of this.sensors) await sensor.stop();
    this.commit();
  }

  /** Resolves true once every buffered reading is acknowledged, false at the deadline. */
  async drained(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.stats().readings > 0) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.statusTimer);
    this.clock.stop();
    await this.stopSensors();
    if (this.link.connected) await this.drained(this.opts.drainOnStopMs);
    this.publisher.stop();
    await this.link.stop();
    await this.driverAlert.close();
    this.ops?.close();
    this.metrics.agents.delete(this);
    this.buffer.close();
    this.log.info('agent stopped');
  }

  private statusDetail() {
    const stats = this.buffer.stats();
    return {
      agentVersion: AGENT_VERSION,
      buffered: stats.readings,
      evicted: stats.evicted,
      clock: this.clock.status(),
      sensors: Object.fromEntries(this.sensors.map((s) => [s.name, s.health().state])),
    };
  }

  /** Gauges are read at scrape time rather than kept current on the hot path. */
  refreshGauges(): void {
    const stats = this.buffer.stats();
    const vehicle = this.opts.vehicle;
    this.metrics.buffered.set({ vehicle }, stats.readings);
    this.metrics.evicted.set({ vehicle }, stats.evicted);
    this.metrics.connected.set({ vehicle }, this.link.connected ? 1 : 0);
    this.metrics.clockSynced.set({ vehicle }, this.clock.synced() ? 1 : 0);
    for (const s of this.sensors) {
      const h = s.health();
      for (const state of SENSOR_STATES) this.metrics.sensorState.set({ vehicle, sensor: s.name, state }, h.state === state ? 1 : 0);
      this.metrics.sensorRejected.set({ vehicle, sensor: s.name }, h.rejected);
    }
  }

  /** Readings taken before the sync get their UTC now, before any of them leaves the truck. */
  private onClockSynced(sync: Sync): void {
    this.commit();
    const fixed = this.buffer.correctClock(sync);
    const vehicle = this.opts.vehicle;
    this.metrics.clockCorrected.inc({ vehicle, how: 'exact' }, fixed.corrected);
    this.metrics.clockCorrected.inc({ vehicle, how: 'estimated' }, fixed.estimated);
    this.log.info({ source: sync.source, afterMs: Math.round(this.clock.uptimeMs()), ...fixed }, 'clock synced: earlier readings corrected');
    this.publisher.notify();
  }

  private async onAlert(payload: Buffer): Promise<void> {
    let alert: Alert;
    try {
      alert = parseAlert(payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'alert message refused');
      return;
    }
    if (alert.vehicle !== this.opts.vehicle || !alert.live) {
      this.log.warn({ alertId: alert.id, live: alert.live }, 'alert not for this cab, ignored');
      return;
    }
    await this.showAlert(alert);
  }

  /** Shows an alert in the cab once per id, whether the cloud or the edge rules raised it. */
  private async showAlert(alert: Alert): Promise<void> {
    if (this.stopped || !this.buffer.markAlertShown(alert.id, Date.now())) return;
    this.metrics.alerts.inc({ vehicle: this.opts.vehicle });
    await this.driverAlert.raise(alert);
  }
}

const SENSOR_STATES: readonly SensorState[] = ['starting', 'ok', 'degraded', 'down'];

type AgentMetrics = ReturnType<typeof createAgentMetrics>;
const metricsByRegistry = new WeakMap<Registry, AgentMetrics>();

/** Agents sharing a process (the simulator) share one registry; series are told apart by vehicle. */
function agentMetrics(registry: Registry): AgentMetrics {
  let m = metricsByRegistry.get(registry);
  if (m === undefined) {
    m = createAgentMetrics(registry);
    metricsByRegistry.set(registry, m);
  }
  return m;
}

function createAgentMetrics(registry: Registry) {
  const labelNames = ['vehicle'] as const;
  const registers = [registry];
  const agents = new Set<Agent>();
  return {
    agents,
    committed: new Counter({ name: 'fleet_agent_readings_committed_total', help: 'Readings committed to the buffer', labelNames, registers }),
    acked: new Counter({ name: 'fleet_agent_readings_acked_total', help: 'Readings acknowledged by the gateway', labelNames, registers }),
    alerts: new Counter({ name: 'fleet_agent_driver_alerts_total', help: 'Alerts shown to the driver', labelNames, registers }),
    buffered: new Gauge({
      name: 'fleet_agent_buffered_readings',
      help: 'Readings waiting for a PUBACK',
      labelNames,
      registers,
      collect: () => agents.forEach((a) => a.refreshGauges()),
    }),
    evicted: new Gauge({ name: 'fleet_agent_evicted_readings', help: 'Readings evicted by the byte cap since the buffer was created', labelNames, registers }),
    connected: new Gauge({ name: 'fleet_agent_connected', help: '1 while the gateway link is up', labelNames, registers }),
    clockSynced: new Gauge({ name: 'fleet_agent_clock_synced', help: '1 once event times come from a trusted clock (system, NTP or GPS)', labelNames, registers }),
    clockCorrected: new Counter({
      name: 'fleet_agent_readings_clock_corrected_total',
      help: 'Readings taken before the clock synced and re-timed after it: exact (this boot) or estimated (an earlier boot)',
      labelNames: ['vehicle', 'how'] as const,
      registers,
    }),
    sensorState: new Gauge({
      name: 'fleet_agent_sensor_state',
      help: "1 for each sensor's current state (starting, ok, degraded, down)",
      labelNames: ['vehicle', 'sensor', 'state'] as const,
      registers,
    }),
    sensorRejected: new Gauge({
      name: 'fleet_agent_sensor_rejected',
      help: 'Input a sensor refused since start (bad checksums, adapter errors, failed CRCs)',
      labelNames: ['vehicle', 'sensor'] as const,
      registers,
    }),
  };
}
