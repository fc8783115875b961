import { Counter, type Registry } from 'prom-client';
import { backoffDelay } from '../../shared/backoff.js';
import type { Logger } from '../../shared/log.js';
import type { FleetStore } from '../store.js';
import type { AlertChannel } from './alert-channel.js';

interface ChannelState {
  channel: AlertChannel;
  busy: boolean;
  failures: number;
  retryAt: number;
}

/**
 * Fans alerts out to every channel, one alert at a time per channel (so a slow webhook
 * does not hold up the cab), each (alert, channel) at most once. A delivery is claimed in
 * the ledger before it is attempted and completed after; a failed one is released and
 * retried with backoff. After a crash, a claim without completion is retried only on a
 * channel whose receiver drops repeats; elsewhere it is logged as in doubt, not resent.
 */
export class AlertDispatcher {
  private readonly states: ChannelState[];
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private readonly metrics;

  constructor(
    private readonly store: FleetStore,
    channels: AlertChannel[],
    private readonly log: Logger,
    registry: Registry,
    private readonly opts = { retryBaseMs: 500, retryMaxMs: 30_000, pollMs: 500 },
  ) {
    this.states = channels.map((channel) => ({ channel, busy: false, failures: 0, retryAt: 0 }));
    const labelNames = ['channel'] as const;
    this.metrics = {
      delivered: new Counter({ name: 'fleet_alert_deliveries_total', help: 'Alerts delivered, by channel', labelNames, registers: [registry] }),
      failed: new Counter({ name: 'fleet_alert_delivery_failures_total', help: 'Failed delivery attempts (retried), by channel', labelNames, registers: [registry] }),
    };
  }

  start(): void {
    for (const { channel } of this.states) {
      for (const alertId of this.store.deliveriesInDoubt(channel.name)) {
        if (channel.idempotent) this.store.releaseDelivery(alertId, channel.name);
        else this.log.warn({ alertId, channel: channel.name }, 'delivery interrupted by a crash; not resent, since this channel cannot drop repeats');
      }
    }
    // New alerts are kicked by the detector; the timer catches retries and other writers.
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
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
    while (this.states.some((s) => s.busy) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const { channel } of this.states) await channel.close();
  }

  private async drain(state: ChannelState): Promise<void> {
    const { channel } = state;
    state.busy = true;
    try {
      for (const alert of this.store.undelivered(channel.name, channel.liveOnly)) {
        if (this.stopping) return;
        if (!this.store.claimDelivery(alert.id, channel.name, Date.now())) continue;
        try {
          await channel.send(alert);
        } catch (err) {
          this.store.releaseDelivery(alert.id, channel.name);
          this.metrics.failed.inc({ channel: channel.name });
          state.retryAt = Date.now() + backoffDelay(state.failures++, this.opts.retryBaseMs, this.opts.retryMaxMs);
          this.log.warn({ vehicle: alert.vehicle, alertId: alert.id, channel: channel.name, err: (err as Error).message }, 'alert delivery failed, will retry');
          return;
        }
        state.failures = 0;
        this.store.completeDelivery(alert.id, channel.name, Date.now());
        this.metrics.delivered.inc({ channel: channel.name });
        this.log.info({ vehicle: alert.vehicle, alertId: alert.id, channel: channel.name, live: alert.live }, 'alert delivered');
      }
    } finally {
      state.busy = false;
    }
  }
}
