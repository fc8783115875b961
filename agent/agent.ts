import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parseAlert, type Alert } from '../shared/contract/alert.js';
import type { EncodeOptions } from '../shared/contract/codec.js';
import type { Logger } from '../shared/log.js';
import { createRegistry, startOpsServer } from '../shared/ops-server.js';
import type { RuleSet } from '../shared/rules/rule-set.js';
import type { AgentConfig } from './agent-config.js';
import { ReadingBuffer } from './buffer.js';
import { CommitQueue, writeFailure } from './commit-queue.js';
import { DeviceClock, systemHost, type DeviceClockOptions, type GpsRefusal, type Sync } from './device-clock.js';
import { EdgeRules } from './edge-rules.js';
import type { DriverAlert } from './driver-alert.js';
import { AgentLink } from './link.js';
import { gatewayAddresses } from '../shared/gateway-urls.js';
import { Publisher } from './publisher.js';
import type { Sensor, SensorState } from './sensor.js';

/**
 * The agent's settings as agent-config.ts declares and validates them, with its files read
 * (certificates, rules) and its paths and groups worked out by agentOptions.
 */
export type AgentOptions = Pick<
  AgentConfig,
  | 'vehicle'
  | 'mqttUrl'
  | 'username'
  | 'password'
  | 'bufferMaxBytes'
  | 'memoryBufferMaxReadings'
  | 'synchronous'
  | 'commitIntervalMs'
  | 'batchMaxReadings'
  | 'lingerMs'
  | 'maxInflight'
  | 'maxPublishesPerSecond'
  | 'keepaliveS'
  | 'reconnectBaseMs'
  | 'reconnectMaxMs'
  | 'drainOnStopMs'
  | 'opsHost'
  | 'opsPort'
> & {
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  bufferPath: string;
  encoding: EncodeOptions;
  /** Rules evaluated on the truck itself, so the cab is warned with no network; none to leave it to the cloud. */
  edgeRules?: RuleSet;
  /** Whether the system clock can be trusted from boot, and how to learn when it can. */
  clock: DeviceClockOptions;
};

export const AGENT_VERSION = '0.1.0';

/**
 * Retrying a refused commit costs one failed transaction; the ceiling bounds how long held
 * samples wait once space returns.
 */
const WRITE_RETRY = { baseMs: 100, maxMs: 2000 };

/**
 * One truck's agent: sensors → durable buffer → gateway, and alerts back to the cab.
 * The order of duties is the guarantee: commit first, publish from the commit, delete on PUBACK.
 */
export class Agent {
  readonly buffer: ReadingBuffer;
  readonly link: AgentLink;
  readonly clock: DeviceClock;
  private readonly publisher: Publisher;
  private readonly queue: CommitQueue;
  /** A clock sync whose correction of the buffered readings has not committed yet. */
  private uncorrected?: Sync;
  /** Alerts shown while the disk refused to record them, so they are still shown once. */
  private readonly shownUnrecorded = new Set<string>();
  private commitTimer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private ops?: Server;
  readonly registry: Registry;
  private readonly metrics: AgentMetrics;
  private stopped = false;
  private readonly edge?: EdgeRules;
  /**
   * Running totals (the buffer's evictions, each sensor's counts) as the last scrape exported
   * them: each counter grows by what its total gained since (see refreshMetrics).
   */
  private evictedScraped = 0;
  private readonly exported = new Map<Counter<'vehicle' | 'sensor'>, Map<string, number>>();

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
    // A GPS time before the newest reading already stored is a receiver's wrong date, not time running backwards.
    this.clock = new DeviceClock(opts.clock, systemHost, () => this.buffer.newestTs());
    this.link = new AgentLink(
      {
        gateways: gatewayAddresses(opts.mqttUrl),
        vehicle: opts.vehicle,
        // In password mode the user name is the vehicle id; MQTT 3.1.1 sends no password without one.
        username: opts.username ?? (opts.password === undefined ? undefined : opts.vehicle),
        password: opts.password,
        tls: opts.tls,
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
        maxPublishesPerSecond: opts.maxPublishesPerSecond,
        encoding: opts.encoding,
        // Until a sync's correction commits, readings taken before it still carry their raw time.
        holdUnsynced: () => this.clock.holding() || this.uncorrected !== undefined,
        bufferWrite: (write) => this.queue.attempt(write),
      },
      this.buffer,
      this.link,
      log,
    );
    this.metrics = agentMetrics(this.registry);
    this.evictedScraped = this.buffer.stats().evicted;
    const vehicle = opts.vehicle;
    this.queue = new CommitQueue(
      { maxHeld: opts.memoryBufferMaxReadings, retryBaseMs: WRITE_RETRY.baseMs, retryMaxMs: WRITE_RETRY.maxMs },
      log,
      {
        writeError: (code) => this.metrics.writeErrors.inc({ vehicle, code }),
        dropped: (reason, n) => this.metrics.dropped.inc({ vehicle, reason }, n),
      },
    );
    this.publisher.onAck = (readings) => this.metrics.acked.inc({ vehicle }, readings);
    this.publisher.onSetAside = (readings) => this.metrics.setAside.inc({ vehicle }, readings);
    this.publisher.onRejection = (reason) => this.metrics.rejections.inc({ vehicle, reason });
    this.link.on('failover', () => this.metrics.failovers.inc({ vehicle }));
    this.metrics.agents.add(this);
    this.link.on(
      'alert',
      (payload) => void this.onAlert(payload).catch((err: Error) => this.log.error({ err: err.message }, 'alert could not be shown')),
    );
    this.clock.on('synced', (sync: Sync) => this.onClockSynced(sync));
    this.clock.on('gpsRefused', ({ reason, first }: GpsRefusal) => {
      this.metrics.gpsTimeRefused.inc({ vehicle });
      if (first) this.log.warn({ reason }, 'GPS time refused: GPS samples take the system clock until the receiver agrees with it');
    });
    this.clock.on('release', () => {
      this.log.warn({ afterMs: opts.clock.holdMs }, 'no clock sync yet: sending unsynced readings with the system time');
      this.publisher.notify();
    });
    if (opts.edgeRules) {
      this.edge = new EdgeRules(
        opts.edgeRules,
        (alert) => void this.showAlert(alert),
        (id) => void this.driverAlert.clear(id),
        log,
      );
    }
  }

  async start(): Promise<void> {
    const { opts } = this;
    this.log.info({ buffered: this.buffer.stats().readings, nextSeq: this.buffer.stats().nextSeq }, 'agent starting');
    this.clock.start();
    this.log.info(this.clock.status(), this.clock.synced() ? 'clock trusted' : 'clock not synced: readings wait for GPS or NTP time');
    for (const sensor of this.sensors) await sensor.start((s) => this.queue.push(this.clock.stamp(s)));
    // While the disk refuses writes, commits are retried only as the backoff allows; the hold is kept within its cap meanwhile.
    this.commitTimer = setInterval(() => (this.queue.due() ? this.commit() : this.queue.trim()), opts.commitIntervalMs);
    this.statusTimer = setInterval(() => this.link.publishStatus(), 10_000);
    this.statusTimer.unref();
    this.link.start();
    this.publisher.notify();
    if (opts.opsPort >= 0) {
      this.ops = await startOpsServer(opts.opsHost, opts.opsPort, this.registry, () => this.health(), this.log);
    }
  }

  /**
   * Commits what the sensors produced since the last commit (and whatever a full disk held
   * back), applies a clock correction still due, then lets the publisher know.
   */
  commit(): void {
    if (this.queue.length === 0 && !this.queue.failing && this.uncorrected === undefined) return;
    const readings = this.queue.commit((samples) => {
      if (this.queue.failing) this.reclaimSpace();
      return this.buffer.append(samples);
    });
    if (readings === undefined) return;
    this.edge?.observe(readings);
    this.metrics.committed.inc({ vehicle: this.opts.vehicle }, readings.length);
    if (this.uncorrected !== undefined) this.correctClock(this.uncorrected);
    this.publisher.notify();
  }

  /**
   * Before retrying a refused commit: the WAL may hold megabytes the database needs a
   * fraction of, and truncating it can give the room back. Where even that is refused the
   * commit is tried all the same (the WAL may have room left).
   */
  private reclaimSpace(): void {
    try {
      this.buffer.checkpoint();
    } catch (err) {
      if (writeFailure(err) === undefined) throw err;
    }
  }

  health() {
    const stats = this.buffer.stats();
    const sensors = Object.fromEntries(this.sensors.map((s) => [s.name, s.health()]));
    return {
      // A full disk degrades the agent but does not make it unhealthy: a restart would not free space and would lose what is held.
      ok: Object.values(sensors).every((h) => h.state !== 'down'),
      vehicle: this.opts.vehicle,
      connected: this.link.connected,
      gateway: this.link.gateway ?? null,
      buffered: stats.readings,
      evicted: stats.evicted,
      nextSeq: stats.nextSeq,
      storage: this.queue.health(),
      inflight: this.publisher.inflightCount(),
      setAside: this.publisher.setAsideCount(),
      clock: this.clock.status(),
      sensors,
    };
  }

  /** Stops sampling and commits what was sampled; the link keeps draining the buffer. */
  async stopSensors(): Promise<void> {
    clearInterval(this.commitTimer);
    for (const sensor of this.sensors) await sensor.stop();
    this.commit();
    if (this.queue.length > 0) {
      this.log.error({ lost: this.queue.length }, 'buffer still not writable at stop: the samples held in memory are lost');
    }
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
      storage: this.queue.health().state,
      clock: this.clock.status(),
      sensors: Object.fromEntries(this.sensors.map((s) => [s.name, s.health().state])),
    };
  }

  /**
   * Gauges, and the counters whose running totals live elsewhere (the buffer, the sensors), are
   * read at scrape time rather than kept current on the hot path; a counter goes up by what
   * its total grew since the last scrape.
   */
  refreshMetrics(): void {
    const stats = this.buffer.stats();
    const vehicle = this.opts.vehicle;
    this.metrics.buffered.set({ vehicle }, stats.readings);
    this.metrics.evicted.inc({ vehicle }, stats.evicted - this.evictedScraped);
    this.evictedScraped = stats.evicted;
    this.metrics.held.set({ vehicle }, this.queue.length);
    this.metrics.connected.set({ vehicle }, this.link.connected ? 1 : 0);
    this.metrics.clockSynced.set({ vehicle }, this.clock.synced() ? 1 : 0);
    for (const s of this.sensors) {
      const h = s.health();
      for (const state of SENSOR_STATES) this.metrics.sensorState.set({ vehicle, sensor: s.name, state }, h.state === state ? 1 : 0);
      this.exportTotal(this.metrics.sensorRejected, s.name, h.rejected);
      this.exportTotal(this.metrics.sensorImplausible, s.name, h.implausible ?? 0);
      this.exportTotal(this.metrics.sensorIgnored, s.name, h.ignored ?? 0);
    }
  }

  /** Adds to a per-sensor counter what the sensor's running total gained since the last scrape. */
  private exportTotal(counter: Counter<'vehicle' | 'sensor'>, sensor: string, total: number): void {
    let seen = this.exported.get(counter);
    if (seen === undefined) this.exported.set(counter, (seen = new Map<string, number>()));
    // Counted from 0 even while nothing happens, so that rate() and alerts see the series.
    const gained = Math.max(0, total - (seen.get(sensor) ?? 0));
    counter.inc({ vehicle: this.opts.vehicle, sensor }, gained);
    seen.set(sensor, total);
  }

  /**
   * Readings taken before the sync get their UTC now, before any of them leaves the truck:
   * the ones still uncommitted are committed first, and on a full disk the correction waits
   * for the commit that succeeds.
   */
  private onClockSynced(sync: Sync): void {
    this.uncorrected = sync;
    this.commit();
  }

  private correctClock(sync: Sync): void {
    const fixed = this.queue.attempt(() => this.buffer.correctClock(sync));
    if (fixed === undefined) return;
    this.uncorrected = undefined;
    const vehicle = this.opts.vehicle;
    this.metrics.clockCorrected.inc({ vehicle, how: 'exact' }, fixed.corrected);
    this.metrics.clockCorrected.inc({ vehicle, how: 'estimated' }, fixed.estimated);
    this.log.info(
      { source: sync.source, afterMs: Math.round(this.clock.uptimeMs()), ...fixed },
      'clock synced: earlier readings corrected',
    );
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
    // Every copy is acknowledged, shown now or before: the cloud sends it again until it hears back.
    if (!this.stopped) this.link.acknowledgeAlert(alert.id);
  }

  /**
   * Shows an alert in the cab once per id, whether the cloud or the edge rules raised it.
   * A full disk does not keep it from the driver: the id is then remembered in memory only.
   */
  private async showAlert(alert: Alert): Promise<void> {
    if (this.stopped || this.shownUnrecorded.has(alert.id)) return;
    const first = this.queue.attempt(() => this.buffer.markAlertShown(alert.id, Date.now()));
    if (first === false) return;
    if (first === undefined) this.shownUnrecorded.add(alert.id);
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
    committed: new Counter({
      name: 'fleet_agent_readings_committed_total',
      help: 'Readings committed to the buffer',
      labelNames,
      registers,
    }),
    acked: new Counter({ name: 'fleet_agent_readings_acked_total', help: 'Readings acknowledged by the gateway', labelNames, registers }),
    alerts: new Counter({ name: 'fleet_agent_driver_alerts_total', help: 'Alerts shown to the driver', labelNames, registers }),
    buffered: new Gauge({
      name: 'fleet_agent_buffered_readings',
      help: 'Readings waiting for a PUBACK',
      labelNames,
      registers,
      collect: () => agents.forEach((a) => a.refreshMetrics()),
    }),
    evicted: new Counter({
      name: 'fleet_agent_evicted_readings_total',
      help: "Readings evicted by the byte cap since the agent started (/healthz has the buffer's total since it was created)",
      labelNames,
      registers,
    }),
    setAside: new Counter({
      name: 'fleet_agent_readings_set_aside_total',
      help: 'Readings of batches set aside after the link was lost each time they were sent; still in the buffer, unsent until restart',
      labelNames,
      registers,
    }),
    rejections: new Counter({
      name: 'fleet_agent_rejections_total',
      help: "Payloads the gateway refused (and dead-lettered), by the reason on the vehicle's rejected topic",
      labelNames: ['vehicle', 'reason'] as const,
      registers,
    }),
    held: new Gauge({
      name: 'fleet_agent_samples_held',
      help: 'Samples taken but not yet committed (many while the disk refuses writes)',
      labelNames,
      registers,
    }),
    writeErrors: new Counter({
      name: 'fleet_agent_buffer_write_errors_total',
      help: 'Buffer writes refused by the disk (SQLITE_FULL, SQLITE_IOERR ...); each is retried',
      labelNames: ['vehicle', 'code'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'fleet_agent_samples_dropped_total',
      help: 'Samples dropped from memory, never committed, because the buffer stayed unwritable past memoryBufferMaxReadings',
      labelNames: ['vehicle', 'reason'] as const,
      registers,
    }),
    connected: new Gauge({ name: 'fleet_agent_connected', help: '1 while the gateway link is up', labelNames, registers }),
    failovers: new Counter({
      name: 'fleet_agent_gateway_failovers_total',
      help: 'Connections made to another gateway than the one the link was last up with',
      labelNames,
      registers,
    }),
    clockSynced: new Gauge({
      name: 'fleet_agent_clock_synced',
      help: '1 once event times come from a trusted clock (system, NTP or GPS)',
      labelNames,
      registers,
    }),
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
    sensorRejected: new Counter({
      name: 'fleet_agent_sensor_rejected_total',
      help: 'Input a sensor refused (bad checksums, adapter errors, failed CRCs)',
      labelNames: ['vehicle', 'sensor'] as const,
      registers,
    }),
    sensorImplausible: new Counter({
      name: 'fleet_agent_sensor_implausible_total',
      help: 'Values a sensor read intact that cannot be true (OBD-II no-value encodings such as 16383.75 rpm), committed with quality bad',
      labelNames: ['vehicle', 'sensor'] as const,
      registers,
    }),
    sensorIgnored: new Counter({
      name: 'fleet_agent_sensor_ignored_total',
      help: 'Sound input a sensor set aside, no error: NMEA sentences the GPS driver does not read, placeholder values',
      labelNames: ['vehicle', 'sensor'] as const,
      registers,
    }),
    gpsTimeRefused: new Counter({
      name: 'fleet_agent_gps_time_refused_total',
      help: 'GPS times the clock refused: further than 60 s from the system clock (NTP), the GPS time in use or before the newest stored reading',
      labelNames,
      registers,
    }),
  };
}
