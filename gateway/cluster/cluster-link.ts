import { Redis } from 'ioredis';
import mqemitter, { type MQEmitter, type Message } from 'mqemitter';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parseTopic } from '../../shared/contract/topics.js';
import type { Logger } from '../../shared/log.js';

export interface ClusterLinkOptions {
  /** The Redis every gateway of the cluster uses (redis:// or rediss://). */
  redisUrl: string;
  /** This gateway's broker id: unique in the cluster, and new at each start (see gateway-config.ts). */
  gatewayId: string;
}

/** A message as it travels between gateways: the fields aedes delivers and dedupes by. */
export interface ClusterPacket {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** The gateway that took it in, and its count there: aedes drops what a client was already given. */
  brokerId: string;
  brokerCounter: number;
}

interface Envelope {
  from: string;
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  brokerId: string;
  brokerCounter: number;
}

/** The Redis pub/sub channel every gateway publishes to and listens on. */
export const CLUSTER_CHANNEL = 'fleet.gateway.cluster';

/** Messages from other gateways waiting to be delivered here, at most; beyond it they are dropped and counted. */
const MAX_INBOUND = 10_000;
/** Reconnect delay to Redis: short, since nothing crosses the cluster meanwhile. */
const RECONNECT_MAX_MS = 2000;

/**
 * Whether a message is for the whole cluster: what a vehicle tells the cloud (its status,
 * its alert acknowledgements), what the cloud tells a vehicle (alerts), and aedes's own
 * `$SYS` announcements (a client connected here, so another gateway closes its old session;
 * a gateway started). Telemetry stays on the gateway that wrote it to the sinks (nobody
 * subscribes to it), and so does a rejection notice (the vehicle it answers is connected here).
 */
export function crossesCluster(topic: string): boolean {
  if (topic.startsWith('$SYS/')) return true;
  const kind = parseTopic(topic)?.kind;
  return kind === 'status' || kind === 'alerts' || kind === 'alert-acks';
}

/**
 * The message bus of one gateway in a cluster, given to aedes as its `mq`. Every message is
 * delivered here first, on this gateway's own emitter, whatever Redis does; those that cross
 * the cluster are also published on one Redis channel, and those other gateways published
 * there are delivered here. So with Redis down a gateway goes on alone: telemetry and its
 * PUBACKs never wait for Redis, only what another gateway should hear is missed (Redis
 * pub/sub keeps nothing for a listener that is away), which the parts above make up for: the
 * agents publish their status every 10 s and the dispatcher sends an alert again until the
 * cab acknowledges it.
 */
export class ClusterLink implements MQEmitter {
  private readonly local: MQEmitter = mqemitter({ concurrency: 100, matchEmptyLevels: true });
  private publisher?: Redis;
  private subscriber?: Redis;
  private inbound: Promise<void> = Promise.resolve();
  private waiting = 0;
  private downSince?: number = Date.now();
  private lastError?: string;
  private closing = false;
  private readonly metrics;

  constructor(
    private readonly opts: ClusterLinkOptions,
    private readonly log: Logger,
    registry: Registry,
    /** Runs for each message from another gateway before it is delivered here, in their order. */
    private readonly received: (packet: ClusterPacket) => Promise<void>,
  ) {
    const registers = [registry];
    const link = () => this.connected;
    this.metrics = {
      messages: new Counter({
        name: 'fleet_gateway_cluster_messages_total',
        help: 'Messages between gateways: sent to the others, received from them, dropped (Redis unreachable, or too many waiting)',
        labelNames: ['direction'] as const,
        registers,
      }),
      connected: new Gauge({
        name: 'fleet_gateway_cluster_connected',
        help: '1 while the link to the other gateways (Redis) is up',
        registers,
        collect(this: Gauge) {
          this.set(link() ? 1 : 0);
        },
      }),
    };
  }

  get current(): number {
    return this.local.current;
  }

  get concurrent(): number {
    return this.local.concurrent;
  }

  get connected(): boolean {
    return this.publisher?.status === 'ready' && this.subscriber?.status === 'ready';
  }

  /** Connects in the background: a gateway starts, and serves its own clients, with Redis down. */
  start(): void {
    const options = {
      // A message that cannot go now is dropped, not queued: it is stale by the time Redis is back.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times: number) => Math.min(100 * times, RECONNECT_MAX_MS),
    };
    this.publisher = this.connection(new Redis(this.opts.redisUrl, options));
    // The subscription is queued until the first connection and made again after every reconnect.
    this.subscriber = this.connection(new Redis(this.opts.redisUrl, { ...options, enableOfflineQueue: true }));
    this.subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.fromCluster(message));
    this.subscriber.subscribe(CLUSTER_CHANNEL).catch((err: Error) => this.failed(err));
  }

  health() {
    const up = this.connected;
    return {
      ok: up,
      gatewayId: this.opts.gatewayId,
      redis: up ? ('connected' as const) : ('down' as const),
      ...(!up && this.downSince !== undefined
        ? {
            detail: `no link to the other gateways since ${new Date(this.downSince).toISOString()}${this.lastError ? `: ${this.lastError}` : ''}; this gateway serves its own clients alone`,
          }
        : {}),
    };
  }

  on(topic: string, listener: (message: Message, done: () => void) => void, callback?: () => void): this {
    this.local.on(topic, listener, callback);
    return this;
  }

  removeListener(topic: string, listener: (message: Message, done: () => void) => void, callback?: () => void): void {
    this.local.removeListener(topic, listener, callback);
  }

  emit(message: Message, callback?: (error?: Error) => void): void {
    this.local.emit(message, callback);
    if (crossesCluster(message.topic)) this.toCluster(message);
  }

  close(callback: () => void): void {
    this.closing = true;
    this.publisher?.disconnect();
    this.subscriber?.disconnect();
    this.local.close(callback);
  }

  private connection(redis: Redis): Redis {
    redis.on('ready', () => {
      if (!this.connected) return;
      this.log.info({ gatewayId: this.opts.gatewayId, downMs: Date.now() - (this.downSince ?? Date.now()) }, 'cluster link up');
      this.downSince = undefined;
      this.lastError = undefined;
    });
    redis.on('close', () => {
      if (this.closing || this.downSince !== undefined) return;
      this.downSince = Date.now();
      this.log.warn({ gatewayId: this.opts.gatewayId }, 'cluster link down: this gateway serves its own clients alone until Redis is back');
    });
    redis.on('error', (err: Error) => this.failed(err));
    return redis;
  }

  /** Redis retries every few hundred ms; one line per distinct failure keeps an outage readable. */
  private failed(err: Error): void {
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.log.warn({ err: err.message }, 'cluster link error');
  }

  private toCluster(message: Message): void {
    const envelope: Envelope = {
      from: this.opts.gatewayId,
      topic: message.topic,
      payload: Buffer.from(message.payload as Buffer | string).toString('base64'),
      qos: (message.qos ?? 0) as 0 | 1 | 2,
      retain: message.retain === true,
      brokerId: String(message.brokerId ?? this.opts.gatewayId),
      brokerCounter: Number(message.brokerCounter ?? 0),
    };
    if (!this.connected) return void this.metrics.messages.inc({ direction: 'dropped' });
    this.publisher!.publish(CLUSTER_CHANNEL, JSON.stringify(envelope)).then(
      () => this.metrics.messages.inc({ direction: 'sent' }),
      () => this.metrics.messages.inc({ direction: 'dropped' }),
    );
  }

  /** In arrival order, so a vehicle's messages keep theirs. */
  private fromCluster(raw: Buffer): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(raw.toString('utf8')) as Envelope;
    } catch {
      return this.log.warn({ bytes: raw.length }, 'unreadable message on the cluster channel, ignored');
    }
    if (envelope.from === this.opts.gatewayId) return;
    if (this.waiting >= MAX_INBOUND) return void this.metrics.messages.inc({ direction: 'dropped' });
    this.waiting++;
    this.metrics.messages.inc({ direction: 'received' });
    const packet: ClusterPacket = {
      topic: envelope.topic,
      payload: Buffer.from(envelope.payload, 'base64'),
      qos: envelope.qos,
      retain: envelope.retain,
      brokerId: envelope.brokerId,
      brokerCounter: envelope.brokerCounter,
    };
    // The emitter queues what it is given in order: only the step before it needs waiting for.
    this.inbound = this.inbound
      .then(() => this.received(packet))
      .then(
        () => this.local.emit({ cmd: 'publish', dup: false, ...packet }),
        (err: Error) => this.log.warn({ topic: packet.topic, err: err.message }, 'message from another gateway not delivered'),
      )
      .finally(() => this.waiting--);
  }
}
