import { Counter, type Registry } from 'prom-client';
import { backoffDelay } from '../../shared/backoff.js';
import type { Logger } from '../../shared/log.js';
import type { StoredAlert } from '../store/stored-alert.js';
import type { AlertChannel, ChannelReceipts } from './alert-channel.js';
import type { DeliveryLedger } from './delivery-ledger.js';

export interface DispatcherOptions {
  /**
   * The cab is given an alert only this long after the reading that
   * closed its window arrived, as the detector's freshness limit: the driver is never told
   * about the past. Unacknowledged by then, the delivery is recorded as expired.
   */
  freshnessMs: number;
  /** Backoff of a channel whose sends fail (or of the ledger, when it refuses a write). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Backoff between copies of an alert a receiver has not acknowledged yet. */
  resendBaseMs: number;
  resendMaxMs: number;
  pollMs: number;
}

export const DEFAULT_DISPATCHER_OPTIONS: DispatcherOptions = {
  freshnessMs: 60_000,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  resendBaseMs: 1000,
  resendMaxMs: 15_000,
  pollMs: 500,
};

interface ChannelState {
  channel: AlertChannel;
  busy: boolean;
  /** Whether the deliveries a crash left in doubt were looked at (the first round does it). */
  settled: boolean;
  failures: number;
  retryAt: number;
  /** Alerts sent to a receiver that acknowledges and not acknowledged yet: when to send each again. */
  resends: Map<string, { vehicle: string; copies: number; dueAt: number }>;
}

/** Unhealthy while the ledger refuses reads or writes: alerts wait meanwhile. */
export interface DispatcherHealth {
  ok: boolean;
  /** Since when and how often the ledger refused, and its last reason. */
  ledger?: string;
}

/**
 * Fans alerts out to every channel, one alert at a time per channel (so a slow webhook
 * does not hold up the cab), each (alert, channel) at most once. A delivery is claimed in
 * the ledger before it is attempted and completed after; a failed one is released and
 * retried with backoff. After a crash, a claim without completion is retried only on a
 * channel whose receiver drops repeats; elsewhere it is logged as in doubt, not resent.
 * A channel whose receiver acknowledges (the cab) gets each alert again, on a backoff and
 * when the receiver comes back, until it is acknowledged or no longer fresh.
 */
export class AlertDispatcher {
  private readonly states: ChannelState[];
  private readonly opts: DispatcherOptions;
  private timer?: NodeJS.Timeout;
  private stopping = false;
  /** Set while the ledger refuses (from its first refusal until a round goes through). */
  private ledgerTrouble?: { since: number; refusals: number; reason: string };
  private readonly metrics;

  constructor(
    private readonly ledger: DeliveryLedger,
    channels: AlertChannel[],
    private readonly log: Logger,
    registry: Registry,
    opts: Partial<DispatcherOptions> = {},
  ) {
    this.opts = { ...DEFAULT_DISPATCHER_OPTIONS, ...opts };
    this.states = channels.map((channel) => ({ channel, busy: false, settled: false, failures: 0, retryAt: 0, resends: new Map() }));
    const labelNames = ['channel'] as const;
    const registers = [registry];
    this.metrics = {
      delivered: new Counter({
        name: 'fleet_alert_deliveries_total',
        help: 'Alerts delivered (for the cab: acknowledged by it), by channel',
        labelNames,
        registers,
      }),
      failed: new Counter({
        name: 'fleet_alert_delivery_failures_total',
        help: 'Failed delivery attempts (retried), by channel',
        labelNames,
        registers,
      }),
      resent: new Counter({
        name: 'fleet_alert_resends_total',
        help: 'Alerts sent again because their receiver had not acknowledged them',
        labelNames,
        registers,
      }),
      expired: new Counter({
        name: 'fleet_alert_expired_total',
        help: 'Alerts no longer fresh before their receiver acknowledged them',
        labelNames,
        registers,
      }),
      receiptsRefused: new Counter({
        name: 'fleet_alert_receipts_refused_total',
        help: 'Acknowledgements that could not be read',
        labelNames,
        registers,
      }),
      ledgerErrors: new Counter({
        name: 'fleet_alert_ledger_errors_total',
        help: 'Delivery ledger reads or writes refused (e.g. SQLITE_BUSY); each retried',
        registers,
      }),
    };
  }

  /** Touches no ledger: one that refuses now is waited for by the rounds, rather than stopping the process. */
  start(): void {
    for (const state of this.states) state.channel.start(this.receipts(state));
    // New alerts are kicked by the detector; the timer catches retries, re-sends and other writers.
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
  }

  health(): DispatcherHealth {
    const t = this.ledgerTrouble;
    if (!t) return { ok: true };
    return { ok: false, ledger: `delivery ledger refused ${t.refusals} times since ${new Date(t.since).toISOString()}; last: ${t.reason}` };
  }

  kick(): void {
    if (this.stopping) return;
    for (const state of this.states) if (!state.busy && Date.now() >= state.retryAt) void this.drain(state);
  }

  /** Lets deliveries under way finish (bounded), so a clean stop leaves none in doubt. */
  async stop(timeoutMs = 5000): Promise<void> {
    clearInterval(this.timer);
    this.stopping = true;
    const deadline = Date.now() + timeoutMs;
    while (this.states.some((s) => s.busy) && Date.now() < deadline) await sleep(20);
    for (const { channel } of this.states) await channel.close();
  }

  /** Never rejects: whatever goes wrong is logged and tried again later. */
  private async drain(state: ChannelState): Promise<void> {
    state.busy = true;
    try {
      if (!state.settled) await this.settleInDoubt(state);
      if (!state.channel.acknowledges || (await this.resendUnacknowledged(state))) await this.deliverNew(state);
      this.ledgerTrouble = undefined;
    } catch (err) {
      // The ledger refused (SQLITE_BUSY while another process writes the store, a full disk, PostgreSQL away).
      // Every send so far is recorded (see `record`), so the same round is simply tried again.
      state.retryAt = Date.now() + backoffDelay(state.failures++, this.opts.retryBaseMs, this.opts.retryMaxMs);
      this.ledgerRefused(err, { channel: state.channel.name }, 'delivery ledger unavailable, will retry');
    } finally {
      state.busy = false;
    }
  }

  /**
   * Deliveries a crash interrupted are tried again on a channel whose receiver drops
   * repeats; elsewhere they are only logged, since a repeat would reach someone twice.
   */
  private async settleInDoubt(state: ChannelState): Promise<void> {
    const { channel } = state;
    for (const alertId of await this.ledger.inDoubt(channel.name)) {
      if (channel.idempotent) await this.ledger.release(alertId, channel.name);
      else
        this.log.warn(
          { alertId, channel: channel.name },
          'delivery interrupted by a crash; not resent, since this channel cannot drop repeats',
        );
    }
    state.settled = true;
  }

  /** A ledger refusal: counted, logged with SQLite's code, and shown on health until a round goes through. */
  private ledgerRefused(err: unknown, fields: Record<string, unknown>, msg: string): void {
    const { message, code } = ledgerError(err);
    this.metrics.ledgerErrors.inc();
    const t = this.ledgerTrouble;
    this.ledgerTrouble = {
      since: t?.since ?? Date.now(),
      refusals: (t?.refusals ?? 0) + 1,
      reason: code ? `${code}: ${message}` : message,
    };
    this.log.error({ ...fields, err: message, code }, msg);
  }

  /** Sends what the channel has not been given yet, until a send fails. */
  private async deliverNew(state: ChannelState): Promise<void> {
    const { channel } = state;
    for (const alert of await this.ledger.undelivered(channel.name, channel.cab)) {
      if (this.stopping) return;
      if (channel.cab && !this.fresh(alert)) {
        await this.expire(state, alert);
        continue;
      }
      if (!(await this.ledger.claim(alert.id, channel.name, Date.now()))) continue;
      if (!(await this.attempt(state, alert))) {
        await this.record(() => this.ledger.release(alert.id, channel.name));
        return;
      }
      const recorded = await this.record(() => this.ledger.sent(alert.id, channel.name, Date.now(), channel.acknowledges));
      const fields = { vehicle: alert.vehicle, alertId: alert.id, channel: channel.name, live: alert.live };
      if (!channel.acknowledges) {
        this.metrics.delivered.inc({ channel: channel.name });
        this.log.info(fields, 'alert delivered');
      } else if (recorded) {
        this.scheduleResend(state, alert, 1);
        this.log.info(fields, 'alert sent, waiting for the acknowledgement');
      }
    }
  }

  /** Sends again what is due and still fresh, and records as expired what is no longer fresh; false when a send failed. */
  private async resendUnacknowledged(state: ChannelState): Promise<boolean> {
    const { channel } = state;
    const awaiting = await this.ledger.awaitingAck(channel.name);
    // Acknowledged through another dispatcher sharing this ledger: forgotten here too.
    const ids = new Set(awaiting.map((a) => a.id));
    for (const id of state.resends.keys()) if (!ids.has(id)) state.resends.delete(id);
    for (const alert of awaiting) {
      if (this.stopping) return true;
      if (!this.fresh(alert)) {
        await this.expire(state, alert);
        continue;
      }
      // Not known after a restart: due at once.
      const { copies, dueAt } = state.resends.get(alert.id) ?? { copies: 0, dueAt: 0 };
      if (dueAt > Date.now()) continue;
      if (!(await this.attempt(state, alert))) return false;
      this.scheduleResend(state, alert, copies + 1);
      this.metrics.resent.inc({ channel: channel.name });
      this.log.info(
        { vehicle: alert.vehicle, alertId: alert.id, channel: channel.name, copies: copies + 1 },
        'alert sent again: not acknowledged yet',
      );
    }
    return true;
  }

  /** One send; a failure backs the channel off. */
  private async attempt(state: ChannelState, alert: StoredAlert): Promise<boolean> {
    try {
      await state.channel.send(alert);
      state.failures = 0;
      return true;
    } catch (err) {
      this.metrics.failed.inc({ channel: state.channel.name });
      state.retryAt = Date.now() + backoffDelay(state.failures++, this.opts.retryBaseMs, this.opts.retryMaxMs);
      this.log.warn(
        { vehicle: alert.vehicle, alertId: alert.id, channel: state.channel.name, err: (err as Error).message },
        'alert delivery failed, will retry',
      );
      return false;
    }
  }

  /**
   * A ledger write that follows a send must not be lost, or the alert would be sent twice
   * (or never counted): it is retried until it succeeds, unless the dispatcher stops (the
   * delivery is then in doubt, which a restart resolves).
   */
  private async record<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await write();
      } catch (err) {
        if (this.stopping) throw err;
        this.ledgerRefused(err, {}, 'delivery ledger refused a write, will retry');
        await sleep(backoffDelay(attempt, this.opts.retryBaseMs, this.opts.retryMaxMs));
      }
    }
  }

  private fresh(alert: StoredAlert): boolean {
    return Date.now() - alert.closedAt <= this.opts.freshnessMs;
  }

  private async expire(state: ChannelState, alert: StoredAlert): Promise<void> {
    const { channel } = state;
    state.resends.delete(alert.id);
    if (!(await this.ledger.expired(alert.id, channel.name, Date.now()))) return;
    this.metrics.expired.inc({ channel: channel.name });
    this.log.warn(
      { vehicle: alert.vehicle, alertId: alert.id, channel: channel.name, closedAt: alert.closedAt, freshnessMs: this.opts.freshnessMs },
      'alert expired: no longer fresh, and the receiver never acknowledged it',
    );
  }

  private scheduleResend(state: ChannelState, alert: StoredAlert, copies: number): void {
    const delay = backoffDelay(copies - 1, this.opts.resendBaseMs, this.opts.resendMaxMs);
    state.resends.set(alert.id, { vehicle: alert.vehicle, copies, dueAt: Date.now() + delay });
  }

  /** Never rejects: a refused write is logged, and the alert is sent again until one is recorded. */
  private async recordAcknowledgement(state: ChannelState, alertId: string, vehicle: string): Promise<void> {
    const channel = state.channel.name;
    let recorded: boolean;
    try {
      recorded = await this.ledger.acknowledged(alertId, channel, Date.now());
    } catch (err) {
      this.ledgerRefused(err, { vehicle, alertId, channel }, 'delivery ledger refused an acknowledgement; the alert will be sent again');
      return;
    }
    state.resends.delete(alertId);
    // A repeat, or an alert another dispatcher sent: nothing to do.
    if (!recorded) return void this.log.debug({ vehicle, alertId, channel }, 'acknowledgement of an alert not waiting for one');
    this.metrics.delivered.inc({ channel });
    this.log.info({ vehicle, alertId, channel }, 'alert delivered: acknowledged by the receiver');
  }

  private receipts(state: ChannelState): ChannelReceipts {
    const channel = state.channel.name;
    return {
      acknowledged: (alertId, vehicle) => void this.recordAcknowledgement(state, alertId, vehicle),
      reachable: (vehicle) => {
        for (const r of state.resends.values()) if (r.vehicle === vehicle) r.dueAt = 0;
        // Word from the receivers' side means the channel works again: no need to sit out its backoff.
        state.retryAt = 0;
        this.kick();
      },
      refused: (detail, vehicle) => {
        this.metrics.receiptsRefused.inc({ channel });
        this.log.warn({ vehicle, channel, detail }, 'acknowledgement refused');
      },
    };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SQLite's code (SQLITE_BUSY, SQLITE_FULL …) says more than its message. */
function ledgerError(err: unknown): { message: string; code?: string } {
  return { message: (err as Error).message, code: (err as { code?: string }).code };
}
