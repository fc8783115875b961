import { EventEmitter } from 'node:events';
import mqtt, { type MqttClient } from 'mqtt';
import { backoffDelay } from '../shared/backoff.js';
import { encodeAlertAck } from '../shared/contract/alert-ack.js';
import { topics, type VehicleStatus } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';

export interface LinkOptions {
  url: string;
  vehicle: string;
  username?: string;
  password?: string;
  /** mqtts: this vehicle's certificate and key, and the CA that signed the gateway's certificate. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  keepaliveS: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /** Publishes not yet acknowledged, at most. */
  maxInflight: number;
}

/** How long a stopping agent waits for the broker to take its offline status. */
const STOP_TIMEOUT_MS = 2000;

/**
 * The agent's MQTT 3.1.1 connection. A persistent session (clean = false) keeps the
 * alert subscription and unacknowledged publishes across reconnects; the Last Will
 * marks the vehicle offline; reconnects back off with jitter (mqtt.js's fixed period
 * would make a whole fleet reconnect in step).
 */
export class AgentLink extends EventEmitter<{ up: []; down: []; alert: [Buffer]; rejected: [Buffer] }> {
  private client?: MqttClient;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  private closing = false;
  /** Topics whose subscription the broker confirmed; a link cut before its SUBACK leaves that unknown. */
  private readonly subscribed = new Set<string>();
  connected = false;

  constructor(
    private readonly opts: LinkOptions,
    private readonly log: Logger,
    private readonly status: () => Omit<VehicleStatus, 'online' | 'at'>,
  ) {
    super();
  }

  start(): void {
    const { vehicle } = this.opts;
    const offline: VehicleStatus = { online: false, at: Date.now() };
    this.client = mqtt.connect(this.opts.url, {
      clientId: vehicle,
      clean: false,
      protocolVersion: 4,
      keepalive: this.opts.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      username: this.opts.username,
      password: this.opts.password,
      ...this.opts.tls,
      will: { topic: topics.status(vehicle), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
    });
    this.client.on('connect', (connack) => {
      this.connected = true;
      this.attempt = 0;
      this.log.info({ sessionPresent: connack.sessionPresent }, 'connected to gateway');
      // A present session keeps a subscription only if it was made: subscribing again is harmless.
      // `rejected` carries the gateway's reason for each payload it refused (at QoS 1 in the
      // session, so a notice sent as the gateway cut the connection arrives on the next one).
      // Online is said once alerts can reach the cab: the cloud sends what the cab has not
      // acknowledged yet when it sees the vehicle come online.
      const wanted = [topics.alerts(vehicle), topics.rejected(vehicle)].filter((t) => !(connack.sessionPresent && this.subscribed.has(t)));
      if (wanted.length === 0) this.publishStatus();
      else {
        this.client!.subscribe(wanted, { qos: 1 }, (err, granted) => {
          if (err) {
            this.log.error({ topics: wanted, err: err.message }, 'subscription failed, will subscribe again on the next connect');
            for (const t of wanted) this.subscribed.delete(t);
          } else for (const g of granted ?? []) this.subscribed.add(g.topic);
          this.publishStatus();
        });
      }
      this.emit('up');
    });
    this.client.on('message', (topic, payload) => {
      if (topic === topics.alerts(vehicle)) this.emit('alert', payload);
      else if (topic === topics.rejected(vehicle)) this.emit('rejected', payload);
    });
    this.client.on('error', (err) => this.log.warn({ err: err.message }, 'gateway link error'));
    this.client.on('close', () => {
      if (this.connected) this.log.warn('gateway link lost');
      this.connected = false;
      this.emit('down');
      this.scheduleReconnect();
    });
  }

  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    this.client!.publish(topic, payload, { qos: 1 }, (err) => done(err ?? undefined));
  }

  publishStatus(): void {
    if (!this.connected) return;
    const doc: VehicleStatus = { online: true, at: Date.now(), ...this.status() };
    this.client!.publish(topics.status(this.opts.vehicle), JSON.stringify(doc), { qos: 1, retain: true });
  }

  /** Tells the cloud the cab has this alert; sent again after a reconnect if the gateway did not take it. */
  acknowledgeAlert(alertId: string): void {
    const payload = encodeAlertAck({ id: alertId, at: Date.now() });
    this.client!.publish(topics.alertAcks(this.opts.vehicle), payload, { qos: 1 }, (err) => {
      if (err) this.log.warn({ alertId, err: err.message }, 'alert acknowledgement not sent; the cloud will send the alert again');
    });
  }

  /** Says goodbye cleanly: a deliberate stop sets the status offline itself (no Will). */
  async stop(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    const client = this.client;
    if (!client) return;
    if (this.connected) {
      const offline: VehicleStatus = { online: false, at: Date.now() };
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) =>
          client.publish(topics.status(this.opts.vehicle), JSON.stringify(offline), { qos: 1, retain: true }, () => resolve()),
        ),
        new Promise<void>((resolve) => (timeout = setTimeout(resolve, STOP_TIMEOUT_MS))),
      ]);
      // Once the gateway took it, the timeout would only hold a stopping process open.
      clearTimeout(timeout);
    }
    // Forced: unacknowledged publishes need not be waited for, the buffer still holds them.
    await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return;
    const delay = backoffDelay(this.attempt++, this.opts.reconnectBaseMs, this.opts.reconnectMaxMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closing && !this.client!.connected) this.client!.reconnect();
    }, delay);
  }
}
