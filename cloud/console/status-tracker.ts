import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { parseTopic, topics } from '../../shared/contract/topics.js';
import { mqttServers } from '../../shared/gateway-urls.js';
import type { Logger } from '../../shared/log.js';
import type { VehicleStatusEntry } from './vehicles.js';

export interface StatusTrackerOptions {
  mqttUrl: string;
  serviceToken: string;
}

export interface StatusUpdate extends VehicleStatusEntry {
  vehicle: string;
}

/**
 * Follows the retained `fleet/v1/+/status` documents through the gateway: the retained
 * copies give the state at connect, the agents' Last Will turns a vehicle offline.
 * Subscribing again on every connect (instead of mqtt.js's resubscribe) gets the
 * retained copies again, so the map is fresh after the gateway was away.
 */
export class StatusTracker {
  private client?: MqttClient;
  private readonly statuses = new Map<string, VehicleStatusEntry>();
  private lastError?: string;

  constructor(
    private readonly opts: StatusTrackerOptions,
    private readonly log: Logger,
    private readonly onUpdate: (update: StatusUpdate) => void,
  ) {}

  start(): void {
    this.client = mqtt.connect({
      ...mqttServers(this.opts.mqttUrl),
      clientId: `console-${randomBytes(6).toString('hex')}`,
      username: 'console',
      password: this.opts.serviceToken,
      protocolVersion: 4,
      clean: true,
      resubscribe: false,
    });
    this.client.on('connect', () => this.onConnect());
    this.client.on('message', (topic, payload) => this.onMessage(topic, payload));
    this.client.on('error', (err) => this.onError(err));
    this.client.on('offline', () => this.log.warn('gateway unreachable; reconnecting'));
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** A copy: callers may keep it while statuses move on. */
  snapshot(): Map<string, VehicleStatusEntry> {
    return new Map(this.statuses);
  }

  async stop(): Promise<void> {
    await this.client?.endAsync(true);
  }

  private onConnect(): void {
    this.lastError = undefined;
    this.log.info('connected to gateway');
    this.client!.subscribe(topics.allStatus, { qos: 1 }, (err, granted) => {
      const refused = err ?? (granted?.some((g) => g.qos === 128) ? new Error('subscription refused by the gateway') : undefined);
      if (refused) this.log.error({ err: refused.message, topic: topics.allStatus }, 'cannot follow vehicle status');
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (t?.kind !== 'status') return;
    // An empty retained message is how a status is deleted from the broker.
    if (payload.length === 0) return void this.statuses.delete(t.vehicle);
    const status = parseStatus(payload);
    if (!status) return this.log.warn({ vehicle: t.vehicle }, 'ignoring malformed status document');
    this.statuses.set(t.vehicle, status);
    this.onUpdate({ vehicle: t.vehicle, ...status });
  }

  /** mqtt.js retries every second; one line per distinct failure keeps an outage readable. */
  private onError(err: Error): void {
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.log.warn({ err: err.message }, 'gateway link error');
  }
}

function parseStatus(payload: Buffer): VehicleStatusEntry | undefined {
  try {
    const doc = JSON.parse(payload.toString('utf8')) as { online?: unknown; at?: unknown } | null;
    if (typeof doc?.online !== 'boolean' || typeof doc.at !== 'number' || !Number.isFinite(doc.at)) return undefined;
    return { online: doc.online, at: doc.at };
  } catch {
    return undefined;
  }
}
