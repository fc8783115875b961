import { createServer, type Server } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { backoffDelay } from '../shared/backoff.js';
import type { Batch } from '../shared/contract/batch.js';
import { decodeBatch } from '../shared/contract/codec.js';
import { ContractError } from '../shared/contract/errors.js';
import { VEHICLE_ID } from '../shared/contract/reading.js';
import { parseTopic, topics } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';
import { createRegistry, startOpsServer } from '../shared/ops-server.js';
import { DeadLetterStore } from './dead-letter.js';
import type { Sink } from './sink.js';

export interface GatewayOptions {
  host: string;
  port: number;
  maxPayloadBytes: number;
  /** Password of the `service` user (detectors, dispatchers, consoles). */
  serviceToken: string;
  deadLetterPath: string;
  sinkRetryBaseMs: number;
  sinkRetryMaxMs: number;
  opsHost: string;
  opsPort: number;
}

/** Why a publish was refused: the metric label and the log line say the same. */
type Refusal = 'foreign_topic' | 'unknown_topic' | 'downlink_topic' | 'oversize' | 'malformed' | 'bad_status';

/** Refusals that mean the client is misbehaving, not merely sending bad data: the connection is closed. */
const CLOSES_CONNECTION: ReadonlySet<Refusal> = new Set(['foreign_topic', 'unknown_topic', 'downlink_topic']);

interface ClientState {
  service: boolean;
  /** Sink writes of one client run in order, also when a write is retried. */
  tail: Promise<void>;
}

/**
 * The MQTT front door. aedes holds a QoS 1 PUBACK until authorizePublish calls back, so
 * the PUBACK is sent only once every sink has the batch. Bad data from an authorized
 * vehicle is acknowledged and dead-lettered with its reason (closing the connection
 * would make the agent resend it forever); only a vehicle acting outside its own topics
 * is disconnected.
 */
export class Gateway {
  private broker?: Aedes;
  private server?: Server;
  private ops?: HttpServer;
  private readonly deadLetters: DeadLetterStore;
  private readonly clients = new WeakMap<Client, ClientState>();
  readonly registry: Registry;
  private readonly metrics;

  constructor(
    readonly opts: GatewayOptions,
    private readonly sinks: Sink[],
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.registry = registry ?? createRegistry('gateway');
    this.deadLetters = new DeadLetterStore(opts.deadLetterPath);
    const r = [this.registry];
    const broker = () => this.broker;
    this.metrics = {
      batches: new Counter({ name: 'fleet_gateway_batches_accepted_total', help: 'Telemetry batches written to every sink', registers: r }),
      readings: new Counter({ name: 'fleet_gateway_readings_accepted_total', help: 'Readings written to every sink', registers: r }),
      refused: new Counter({ name: 'fleet_gateway_refused_total', help: 'Publishes refused, by reason', labelNames: ['reason'] as const, registers: r }),
      sinkErrors: new Counter({ name: 'fleet_gateway_sink_errors_total', help: 'Failed sink writes (retried)', labelNames: ['sink'] as const, registers: r }),
      pubackDelay: new Histogram({
        name: 'fleet_gateway_sink_write_seconds',
        help: 'Time from receiving a batch to every sink having it (the PUBACK delay)',
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
        registers: r,
      }),
      clients: new Gauge({
        name: 'fleet_gateway_connected_clients',
        help: 'Connected MQTT clients',
        registers: r,
        collect(this: Gauge) {
          this.set(broker()?.connectedClients ?? 0);
        },
      }),
    };
  }

  async start(): Promise<void> {
    for (const sink of this.sinks) await sink.start();
    this.broker = await Aedes.createBroker({
      id: 'fleet-gateway',
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client, sub, done),
    });
    this.broker.on('clientReady', (c) => this.log.info({ vehicle: this.vehicleOf(c) }, 'client connected'));
    this.broker.on('clientDisconnect', (c) => this.log.info({ vehicle: this.vehicleOf(c) }, 'client disconnected'));
    this.broker.on('clientError', (c, err) => this.log.warn({ vehicle: this.vehicleOf(c), err: err.message }, 'client error'));
    this.server = createServer(this.broker.handle);
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.host, resolve);
    });
    if (this.opts.opsPort >= 0) {
      this.ops = await startOpsServer(this.opts.opsHost, this.opts.opsPort, this.registry, () => this.health());
    }
    this.log.info({ port: this.port, sinks: this.sinks.map((s) => s.name) }, 'gateway listening');
  }

  get port(): number {
    const addr = this.server?.address();
    return typeof addr === 'object' && addr ? addr.port : this.opts.port;
  }

  health() {
    const sinks = Object.fromEntries(this.sinks.map((s) => [s.name, s.health()]));
    return { ok: Object.values(sinks).every((h) => h.ok), clients: this.broker?.connectedClients ?? 0, sinks };
  }

  /** Publishes as the gateway itself (used by in-process parts). */
  publish(topic: string, payload: Buffer, qos: 0 | 1 = 1): Promise<void> {
    return new Promise((resolve, reject) =>
      this.broker!.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
    );
  }

  async stop(): Promise<void> {
    this.ops?.close();
    // The broker first: it disconnects the clients, which server.close() would otherwise wait for.
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (this.broker ? this.broker.close(() => resolve()) : resolve()));
    await closed;
    for (const sink of this.sinks) await sink.close();
    this.deadLetters.close();
    this.log.info('gateway stopped');
  }

  private vehicleOf(client: Client): string | undefined {
    return this.clients.get(client)?.service ? undefined : client.id;
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    if (username === 'service') {
      if (password?.toString() !== this.opts.serviceToken) {
        this.log.warn({ clientId: client.id }, 'service client refused: bad password');
        return done(authError('bad service password', 4), false);
      }
      this.clients.set(client, { service: true, tail: Promise.resolve() });
      return done(null, true);
    }
    if (!VEHICLE_ID.test(client.id)) {
      this.log.warn({ clientId: client.id }, 'client refused: client id is not a valid vehicle id');
      return done(authError('client id must be a vehicle id', 2), false);
    }
    this.clients.set(client, { service: false, tail: Promise.resolve() });
    done(null, true);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    if (this.clients.get(client)?.service) return done(null, sub);
    const t = parseTopic(sub.topic);
    if (t && t.vehicle === client.id && (t.kind === 'alerts' || t.kind === 'rejected')) return done(null, sub);
    this.log.warn({ vehicle: client.id, topic: sub.topic }, 'subscription refused: a vehicle may only follow its own alerts');
    done(null, null);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const state = client ? this.clients.get(client) : undefined;
    if (client === null || state?.service) return done(null);
    const vehicle = client.id;
    const t = parseTopic(packet.topic);
    if (!t) return this.refuse(client, packet, 'unknown_topic', `topic ${packet.topic} is not a fleet topic`, done);
    if (t.vehicle !== vehicle) {
      return this.refuse(client, packet, 'foreign_topic', `vehicle ${vehicle} may not publish under ${t.vehicle}`, done);
    }
    if (t.kind === 'alerts' || t.kind === 'rejected') {
      return this.refuse(client, packet, 'downlink_topic', `${t.kind} is a downlink topic`, done);
    }
    const payload = packet.payload as Buffer;
    if (payload.length > this.opts.maxPayloadBytes) {
      return this.refuse(client, packet, 'oversize', `payload of ${payload.length} bytes exceeds the limit of ${this.opts.maxPayloadBytes}`, done);
    }
    if (t.kind === 'status') {
      const problem = statusProblem(payload);
      return problem ? this.refuse(client, packet, 'bad_status', problem, done) : done(null);
    }
    const receivedAt = Date.now();
    let batch: Batch;
    try {
      batch = decodeBatch(vehicle, payload, receivedAt);
    } catch (err) {
      if (!(err instanceof ContractError)) throw err;
      return this.refuse(client, packet, 'malformed', err.message, done);
    }
    state!.tail = state!.tail.then(() => this.writeToSinks(client, batch, receivedAt)).then(
      () => {
        this.metrics.batches.inc();
        this.metrics.readings.inc(batch.readings.length);
        this.metrics.pubackDelay.observe((Date.now() - receivedAt) / 1000);
        done(null);
      },
      (err: Error) => done(err),
    );
  }

  /**
   * Writes to every sink, retrying a failing one with backoff for as long as the client
   * stays connected: the PUBACK is held meanwhile and the agent keeps buffering.
   */
  private async writeToSinks(client: Client, batch: Batch, receivedAt: number): Promise<void> {
    await Promise.all(
      this.sinks.map(async (sink) => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await sink.write(batch, receivedAt);
          } catch (err) {
            this.metrics.sinkErrors.inc({ sink: sink.name });
            if (client.closed) throw new Error(`sink ${sink.name} failed and the client left: ${(err as Error).message}`);
            const delay = backoffDelay(attempt, this.opts.sinkRetryBaseMs, this.opts.sinkRetryMaxMs);
            this.log.error({ vehicle: batch.vehicle, sink: sink.name, err: (err as Error).message, retryInMs: Math.round(delay) }, 'sink write failed, PUBACK held');
            await new Promise((r) => setTimeout(r, delay));
          }
        }
      }),
    );
  }

  private refuse(client: Client, packet: PublishPacket, reason: Refusal, detail: string, done: (err?: Error | null) => void): void {
    const vehicle = client.id;
    this.metrics.refused.inc({ reason });
    this.log.warn({ vehicle, topic: packet.topic, reason, detail }, 'publish refused');
    if (CLOSES_CONNECTION.has(reason)) return done(new Error(`${reason}: ${detail}`));
    this.deadLetters.put({ vehicle, topic: packet.topic, reason: `${reason}: ${detail}`, receivedAt: Date.now(), payload: packet.payload as Buffer });
    // The publish goes ahead acknowledged, turned into the vehicle's own rejection notice.
    packet.payload = Buffer.from(JSON.stringify({ reason, detail, topic: packet.topic, at: Date.now() }));
    packet.topic = topics.rejected(vehicle);
    packet.retain = false;
    done(null);
  }
}

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function statusProblem(payload: Buffer): string | undefined {
  try {
    const doc = JSON.parse(payload.toString()) as { online?: unknown };
    return typeof doc === 'object' && doc !== null && typeof doc.online === 'boolean' ? undefined : 'status must be a JSON object with boolean "online"';
  } catch {
    return 'status is not valid JSON';
  }
}
