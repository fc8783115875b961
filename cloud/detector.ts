import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../shared/log.js';
import { createRegistry, startOpsServer } from '../shared/ops-server.js';
import { sleep } from '../shared/sleep.js';
import { RuleEngine, type AlertEvent } from '../shared/rules/engine.js';
import type { RuleSet } from '../shared/rules/rule-set.js';
import type { AlertChannel, AlertStreamWriter } from './alerts/alert-channel.js';
import { AlertDispatcher } from './alerts/alert-dispatcher.js';
import type { DetectorConfig } from './detector-config.js';
import type { SourcedRecord, TelemetrySource } from './sources/source.js';
import { vehicleKey, type FleetStore, type ReceivedReadings, type StoreWrite } from './store.js';

/** The longest wait between attempts to store a step while the store is away. */
const STORE_RETRY_MAX_MS = 2000;
/** How often readings past their retention are dropped. */
const RETENTION_EVERY_MS = 3600_000;
const MS_PER_DAY = 86_400_000;

/** Some of the detector's settings as detector-config.ts declares them, and the parts made from the others. */
export type DetectorOptions = Pick<DetectorConfig, 'pollIntervalMs' | 'opsHost' | 'opsPort'> & {
  /** Readings older than this many days of event time are dropped; absent, every one is kept (tests and benchmarks). */
  readingsRetentionDays?: number;
  /** The operational store (cloud/store/open-store.ts), opened by `start`; the detector closes it when it stops. */
  store: FleetStore;
  pollMaxRecords: number;
  /** Where alerts go: the driver's cab, SNS, webhooks (none when a stream carries them to dispatchers). */
  channels: AlertChannel[];
  /** fleet.alerts, when alerts are dispatched elsewhere: written before the stream position is committed. */
  alertStream?: AlertStreamWriter;
};

/**
 * The windowed anomaly detector: stream → dedupe → event-time windows → alerts. Readings
 * and the alerts they raise are written in one transaction before the stream position is
 * committed, so a crash at any point replays into the same state (ids are deterministic,
 * readings keyed by (vehicle, seq)).
 */
export class Detector {
  readonly engine: RuleEngine;
  readonly store: FleetStore;
  readonly dispatcher: AlertDispatcher;
  readonly registry: Registry;
  private running = false;
  private loop?: Promise<void>;
  /** Cuts the wait between polls short when the detector stops. */
  private readonly stopping = new AbortController();
  /** While polls fail: the last error, how many in a row, and since when. */
  private pollFailure?: { error: string; failures: number; since: number };
  private ops?: Server;
  private retentionTimer?: NodeJS.Timeout;
  /** The round of dropping old readings under way, awaited by `stop`. */
  private retentionRound?: Promise<void>;
  private readonly metrics;
  /** The source's assignment count the engine's memory belongs to. */
  private assignmentsSeen?: number;
  /** The engine's running counts of late and outlier readings as the metrics last took them. */
  private readonly exported = { late: 0, outliers: 0 };

  constructor(
    private readonly opts: DetectorOptions,
    rules: RuleSet,
    private readonly source: TelemetrySource,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.engine = new RuleEngine(rules);
    this.store = opts.store;
    this.registry = registry ?? createRegistry('detector');
    this.dispatcher = new AlertDispatcher(this.store.deliveries, opts.channels, log, this.registry, { freshnessMs: rules.freshnessMs });
    const r = [this.registry];
    const engine = this.engine;
    this.metrics = {
      readings: new Counter({ name: 'fleet_detector_readings_total', help: 'Distinct readings evaluated', registers: r }),
      duplicates: new Counter({ name: 'fleet_detector_duplicates_total', help: 'Repeated (vehicle, seq) readings dropped', registers: r }),
      alerts: new Counter({
        name: 'fleet_detector_alert_events_total',
        help: 'Alert events by kind and liveness',
        labelNames: ['kind', 'live'] as const,
        registers: r,
      }),
      late: new Counter({
        name: 'fleet_detector_late_readings_total',
        help: 'Readings that arrived after their window closed (not evaluated)',
        registers: r,
      }),
      outliers: new Counter({
        name: 'fleet_detector_outlier_readings_total',
        help: "Readings far ahead of their vehicle's time that no later reading confirmed: a clock fault, not evaluated",
        registers: r,
      }),
      expired: new Counter({
        name: 'fleet_detector_readings_expired_total',
        help: 'Stored readings dropped for being older than readingsRetentionDays',
        registers: r,
      }),
      pollFailures: new Counter({
        name: 'fleet_detector_poll_failures_total',
        help: 'Rounds of reading, storing and committing the stream that failed (each retried after the poll interval)',
        registers: r,
      }),
      vehicles: new Gauge({
        name: 'fleet_detector_vehicles',
        help: 'Vehicles with window state',
        registers: r,
        collect(this: Gauge) {
          this.set(engine.vehicleCount);
        },
      }),
    };
  }

  async start(): Promise<void> {
    await this.store.open();
    await this.opts.alertStream?.start();
    this.dispatcher.start();
    if (this.opts.opsPort >= 0)
      this.ops = await startOpsServer(this.opts.opsHost, this.opts.opsPort, this.registry, () => this.health(), this.log);
    this.running = true;
    this.loop = this.run();
    const days = this.opts.readingsRetentionDays;
    if (days !== undefined) {
      const round = () => void (this.retentionRound = this.expireReadings(days));
      round();
      this.retentionTimer = setInterval(round, RETENTION_EVERY_MS);
    }
    this.log.info(
      { source: this.source.name, windowMs: this.engine.ruleSet.windowMs, rules: this.engine.ruleSet.rules.length },
      'detector started',
    );
  }

  /** Unhealthy while stopped and while polls fail, with the error, so an orchestrator sees a detector that reads nothing. */
  async health() {
    const dispatcher = this.dispatcher.health();
    // The store away (PostgreSQL restarting) is unhealthy too: nothing is stored meanwhile.
    const store = await this.store.counts().then(
      (counts) => ({ ok: true, ...counts }),
      (err: Error) => ({ ok: false, storeError: err.message }),
    );
    const f = this.pollFailure;
    const poll = f ? { ok: false, detail: f.error, failures: f.failures, since: f.since } : { ok: true };
    const sourceDetail = this.source.health?.();
    return {
      source: this.source.name,
      ...(sourceDetail ? { sourceDetail } : {}),
      poll,
      channels: this.opts.channels.map((c) => c.name),
      ...(dispatcher.ledger ? { ledger: dispatcher.ledger } : {}),
      ...this.engine.counters,
      ...store,
      ok: this.running && poll.ok && dispatcher.ok && store.ok && sourceDetail?.ok !== false,
    };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    clearInterval(this.retentionTimer);
    await this.retentionRound;
    await this.loop;
    await this.dispatcher.stop();
    await this.opts.alertStream?.close();
    await this.source.close();
    this.ops?.close();
    await this.store.close();
    this.log.info('detector stopped');
  }

  private async run(): Promise<void> {
    while (this.running) {
      let records: SourcedRecord[] = [];
      try {
        records = await this.source.poll(this.opts.pollMaxRecords);
        if (records.length > 0) {
          const events = await this.handle(records);
          await this.opts.alertStream?.write(events);
          await this.source.commit(records.at(-1)!);
          this.dispatcher.kick();
        }
        this.pollSucceeded();
      } catch (err) {
        this.pollFailed(err as Error);
        // Sources that can rewind hand the unhandled records out again at once; the others do after a restart.
        await this.source.rewind?.().catch((e: Error) => this.log.error({ err: e.message }, 'source rewind failed'));
      }
      if (records.length < this.opts.pollMaxRecords) await sleep(this.opts.pollIntervalMs, this.stopping.signal);
    }
  }

  /**
   * A step's store work, tried until it succeeds: the records were taken from the source, which
   * does not give them again, and the stream position is committed only after this resolves.
   * Gives up only when the detector stops (the records are then read again after a restart).
   * A write retried after a failure whose outcome is unknown (`attempt` > 0) finds its own
   * readings stored and does not count them again.
   */
  private async untilDone<T>(work: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await work(attempt);
      } catch (err) {
        if (!this.running) throw err;
        this.pollFailed(err as Error);
        await sleep(Math.min(STORE_RETRY_MAX_MS, this.opts.pollIntervalMs * 2 ** attempt), this.stopping.signal);
      }
    }
  }

  /** Never rejects: a failure is logged and the next round tries again. */
  private async expireReadings(days: number): Promise<void> {
    const before = Date.now() - days * MS_PER_DAY;
    try {
      const dropped = await this.store.dropReadingsBefore(before);
      this.metrics.expired.inc(dropped);
      if (dropped > 0) this.log.info({ dropped, before: new Date(before).toISOString(), retentionDays: days }, 'old readings dropped');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'dropping old readings failed; tried again within the hour');
    }
  }

  private pollFailed(err: Error): void {
    const failures = (this.pollFailure?.failures ?? 0) + 1;
    this.pollFailure = { error: err.message, failures, since: this.pollFailure?.since ?? Date.now() };
    this.metrics.pollFailures.inc();
    this.log.error({ err: err.message, failures }, 'detector poll failed, retrying');
  }

  private pollSucceeded(): void {
    if (!this.pollFailure) return;
    this.log.info({ failures: this.pollFailure.failures, failingForMs: Date.now() - this.pollFailure.since }, 'detector polls again');
    this.pollFailure = undefined;
  }

  /** Exposed for benchmarks and tests that drive the detector without a loop. */
  async handle(records: SourcedRecord[]): Promise<AlertEvent[]> {
    const now = Date.now();
    if (this.source.assignments !== this.assignmentsSeen) {
      // Another share of the stream: what the store and the rebuild say, not what was remembered.
      this.engine.forgetAll();
      this.assignmentsSeen = this.source.assignments;
    }
    // Read before the windows take anything: until it succeeds, a retry starts from the same state.
    const seen = await this.untilDone(async () => {
      const unknown = [...new Set(records.map((rec) => rec.batch.vehicle))].filter((v) => !this.engine.knows(v));
      if (unknown.length > 0) for (const alert of await this.store.openAlerts(unknown)) this.engine.adopt(alert);
      return this.store.storedKeys(records.filter((rec) => !rec.rebuild).flatMap((rec) => rec.batch.readings));
    });
    const events: AlertEvent[] = [];
    const received: ReceivedReadings[] = [];
    let duplicates = 0;
    for (const rec of records) {
      const { batch } = rec;
      let toEvaluate: typeof batch.readings;
      if (rec.rebuild) {
        // Stored and evaluated before the restart: feed the windows again, once each.
        toEvaluate = batch.readings.filter((r) => !this.engine.seen(r.vehicle, r.seq));
      } else {
        // Stored before, or earlier in this step: dropped and counted.
        toEvaluate = batch.readings.filter((r) => !seen.has(vehicleKey(r)) && Boolean(seen.add(vehicleKey(r))));
        received.push({ readings: toEvaluate, receivedAt: rec.receivedAt });
        duplicates += batch.readings.length - toEvaluate.length;
      }
      for (const r of toEvaluate) events.push(...this.engine.process(r, rec.receivedAt, batch.headTs));
    }
    const step: StoreWrite = { received, duplicates, events, at: now };
    const written = await this.untilDone((attempt) => this.store.write(attempt === 0 ? step : { ...step, retry: true }));
    this.metrics.readings.inc(written.stored);
    for (const kind of ['late', 'outliers'] as const) {
      this.metrics[kind].inc(this.engine.counters[kind] - this.exported[kind]);
      this.exported[kind] = this.engine.counters[kind];
    }
    if (written.duplicates > 0) this.metrics.duplicates.inc(written.duplicates);
    for (const e of events) {
      const live = e.kind === 'cleared' ? 'n/a' : String(e.alert.live);
      this.metrics.alerts.inc({ kind: e.kind, live });
      if (e.kind !== 'cleared') {
        this.log.info(
          { vehicle: e.alert.vehicle, alertId: e.alert.id, rule: e.alert.rule, live: e.alert.live, observed: e.alert.observed },
          `alert ${e.kind}`,
        );
      } else this.log.info({ vehicle: e.vehicle, alertId: e.alertId }, 'alert cleared');
    }
    return events;
  }
}
