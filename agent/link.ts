import { EventEmitter } from 'node:events';
import { connect as connectTcp, isIP } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { MqttClient } from 'mqtt';
import { backoffDelay } from '../shared/backoff.js';
import { encodeAlertAck } from '../shared/contract/alert-ack.js';
import { topics, type VehicleStatus } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';
import type { GatewayAddress } from '../shared/gateway-urls.js';
import { GatewayList } from './gateway-list.js';

export interface LinkOptions {
  /** One gateway, or several to fail over between (gateway-list.ts). */
  gateways: readonly GatewayAddress[];
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
 *
 * Given several gateways it fails over between them (GatewayList says in which order):
 * one client, whose socket each reconnect opens to the next gateway, so what it has not
 * had acknowledged is resent there, and the publisher resends whatever the buffer still
 * holds. mqtt.js's own `servers` option is not used: it names the TLS server (SNI, and the
 * name the certificate must carry) after the first gateway it connects to, for all of them.
 */
export class AgentLink extends EventEmitter<{
  up: [];
  down: [];
  alert: [Buffer];
  rejected: [Buffer];
  failover: [from: string, to: string];
}> {
  private client?: MqttClient;
  private readonly gateways: GatewayList;
  /** The gateway the link is up with, and the last one it was up with. */
  private via?: GatewayAddress;
  private lastVia?: GatewayAddress;
  private timer?: NodeJS.Timeout;
  private closing = false;
  /** Topics whose subscription the broker confirmed; a link cut before its SUBACK leaves that unknown. */
  private readonly subscribed = new Set<string>();
  connected = false;

  constructor(
    private readonly opts: LinkOptions,
    private readonly log: Logger,
    private readonly status: () => Omit<VehicleStatus, 'online' | 'at' | 'gateway'>,
  ) {
    super();
    this.gateways = new GatewayList(opts.gateways, opts.vehicle);
  }

  /** The gateway the link is up with. */
  get gateway(): string | undefined {
    return this.via?.url;
  }

  start(): void {
    const { vehicle } = this.opts;
    const offline: VehicleStatus = { online: false, at: Date.now() };
    this.client = new MqttClient(() => this.openSocket(this.gateways.current), {
      clientId: vehicle,
      clean: false,
      protocolVersion: 4,
      keepalive: this.opts.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      // mqtt-packet otherwise keeps a 2-byte Buffer for each of the 65,536 packet ids: 6.5 MB
      // of heap, a quarter of the agent's, to save writing two bytes per publish.
      writeCache: false,
      username: this.opts.username,
      password: this.opts.password,
      will: { topic: topics.status(vehicle), payload: Buffer.from(JSON.stringify(offline)), qos: 1, retain: true },
    });
    this.client.on('connect', (connack) => {
      this.connected = true;
      this.gateways.connected();
      this.via = this.gateways.current;
      this.log.info({ gateway: this.via.url, sessionPresent: connack.sessionPresent }, 'connected to gateway');
      if (this.lastVia !== undefined && this.lastVia !== this.via) {
        this.log.warn({ from: this.lastVia.url, to: this.via.url }, 'failed over to another gateway');
        this.emit('failover', this.lastVia.url, this.via.url);
      }
      this.lastVia = this.via;
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
      if (this.connected) this.log.warn({ gateway: this.via?.url }, 'gateway link lost');
      this.connected = false;
      this.via = undefined;
      this.emit('down');
      this.scheduleReconnect();
    });
  }

  publish(topic: string, payload: Buffer, done: (err?: Error) => void): void {
    this.client!.publish(topic, payload, { qos: 1 }, (err) => done(err ?? undefined));
  }

  publishStatus(): void {
    if (!this.connected) return;
    const doc: VehicleStatus = { online: true, at: Date.now(), gateway: this.via?.url, ...this.status() };
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

  /** The socket to one gateway; mqtt.js runs MQTT over it. */
  private openSocket(gateway: GatewayAddress) {
    const { host, port } = gateway;
    if (!gateway.secure) return connectTcp({ host, port });
    // The gateway's certificate must name the host this URL names (an address needs no SNI).
    return connectTls({ host, port, servername: isIP(host) === 0 ? host : undefined, rejectUnauthorized: true, ...this.opts.tls });
  }

  private scheduleReconnect(): void {
    if (this.closing || this.timer) return;
    const round = this.gateways.moveOn();
    const delay = backoffDelay(round, this.opts.reconnectBaseMs, this.opts.reconnectMaxMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closing && !this.client!.connected) this.client!.reconnect();
    }, delay);
  }
}
