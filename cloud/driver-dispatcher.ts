import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';
import type { FleetStore } from './store.js';

export interface DispatcherOptions {
  mqttUrl: string;
  serviceToken: string;
  clientId: string;
}

/**
 * Sends live alerts down to the cab through the gateway (QoS 1). An alert counts as sent
 * when the gateway acknowledged it; the agent shows each id once, so a resend after a
 * crash between PUBACK and the store update is harmless. Historical alerts are never
 * selected: the store only offers live ones.
 */
export class DriverDispatcher {
  private client?: MqttClient;
  private readonly inflight = new Set<string>();
  private timer?: NodeJS.Timeout;
  sent = 0;

  constructor(
    private readonly opts: DispatcherOptions,
    private readonly store: FleetStore,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.client = mqtt.connect(this.opts.mqttUrl, {
      clientId: this.opts.clientId,
      username: 'service',
      password: this.opts.serviceToken,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
    });
    this.client.on('connect', () => this.kick());
    this.client.on('error', (err) => this.log.warn({ err: err.message }, 'dispatcher link error'));
    // Catches alerts whose send failed (gateway down) without waiting for the next one.
    this.timer = setInterval(() => this.kick(), 1000);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Sends every live alert not yet acknowledged by the gateway. */
  kick(): void {
    if (!this.client?.connected) return;
    for (const alert of this.store.alertsToDispatch()) {
      if (this.inflight.has(alert.id)) continue;
      this.inflight.add(alert.id);
      const { state: _s, ackedBy: _ab, ackedAt: _aa, clearedBy: _cb, clearedAt: _ca, driverSentAt: _d, ...wire } = alert;
      this.client.publish(topics.alerts(alert.vehicle), JSON.stringify(wire), { qos: 1 }, (err) => {
        this.inflight.delete(alert.id);
        if (err) return this.log.warn({ vehicle: alert.vehicle, alertId: alert.id, err: err.message }, 'driver alert not sent, will retry');
        this.store.markDriverSent(alert.id, Date.now());
        this.sent++;
        this.log.info({ vehicle: alert.vehicle, alertId: alert.id, rule: alert.rule }, 'driver alert sent');
      });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await new Promise<void>((resolve) => (this.client ? this.client.end(true, {}, () => resolve()) : resolve()));
  }
}
