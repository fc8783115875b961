import mqtt, { type MqttClient } from 'mqtt';
import { wireAlert, type Alert } from '../../../shared/contract/alert.js';
import { readAlertAck } from '../../../shared/contract/alert-ack.js';
import { parseTopic, topics } from '../../../shared/contract/topics.js';
import { mqttServers } from '../../../shared/gateway-urls.js';
import type { Logger } from '../../../shared/log.js';
import type { AlertChannel, ChannelReceipts } from '../alert-channel.js';

export interface DriverChannelOptions {
  mqttUrl: string;
  serviceToken: string;
  clientId: string;
}

/**
 * Down to the cab through the gateway. The gateway keeps nothing for the cab: an alert is
 * published at QoS 0 and reaches the cab only if it is connected, and the cab acknowledges
 * every copy it gets on `alert-acks`. The dispatcher's ledger is the one list of what is
 * still owed to each cab; it sends again when the cab's status says online and on a
 * backoff, so any gateway (after a restart, or another one of several) can carry it.
 */
export class DriverChannel implements AlertChannel {
  readonly name = 'driver';
  readonly cab = true;
  readonly idempotent = true; // the agent shows each alert id once
  readonly acknowledges = true;
  private client?: MqttClient;
  /** Vehicles last seen online; learnt again from the retained statuses after each connect. */
  private readonly online = new Set<string>();
  private lastError?: string;

  constructor(
    private readonly opts: DriverChannelOptions,
    private readonly log: Logger,
  ) {}

  start(receipts: ChannelReceipts): void {
    this.client = mqtt.connect({
      ...mqttServers(this.opts.mqttUrl),
      clientId: this.opts.clientId,
      username: 'dispatcher',
      password: this.opts.serviceToken,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
      // Subscribed on every connect instead: that brings the retained statuses again.
      resubscribe: false,
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload, receipts));
    // mqtt.js retries every second; one line per distinct failure keeps an outage readable.
    this.client.on('error', (err) => {
      if (err.message !== this.lastError) this.log.warn({ err: err.message }, 'driver channel link error');
      this.lastError = err.message;
    });
  }

  async send(alert: Alert): Promise<void> {
    if (!this.client?.connected) throw new Error('gateway not connected');
    await this.client.publishAsync(topics.alerts(alert.vehicle), JSON.stringify(wireAlert(alert)), { qos: 0 });
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }

  private onConnect(): void {
    this.lastError = undefined;
    this.online.clear();
    const filters = [topics.allStatus, topics.allAlertAcks];
    this.client!.subscribe(filters, { qos: 1 }, (err, granted) => {
      const refused = err ?? (granted?.some((g) => g.qos === 128) ? new Error('subscription refused by the gateway') : undefined);
      if (refused)
        this.log.error(
          { err: refused.message, topics: filters },
          'cannot follow cab status and acknowledgements; alerts are still sent on a backoff',
        );
    });
  }

  private onMessage(topic: string, payload: Buffer, receipts: ChannelReceipts): void {
    const t = parseTopic(topic);
    if (t?.kind === 'alert-acks') {
      const read = readAlertAck(t.vehicle, payload);
      if ('problem' in read) receipts.refused(read.problem, t.vehicle);
      else receipts.acknowledged(read.ack.id, t.vehicle);
    } else if (t?.kind === 'status') {
      const online = isOnline(payload);
      if (online && !this.online.has(t.vehicle)) receipts.reachable(t.vehicle);
      if (online) this.online.add(t.vehicle);
      else this.online.delete(t.vehicle);
    }
  }
}

/** The gateway checks status documents; an unreadable or empty (deleted) one counts as not online. */
function isOnline(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString('utf8')) as { online?: unknown } | null)?.online === true;
  } catch {
    return false;
  }
}
