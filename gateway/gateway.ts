import { setMaxListeners } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { backoffDelay } from '../shared/backoff.js';
import { readAlertAck } from '../shared/contract/alert-ack.js';
import type { Batch } from '../shared/contract/batch.js';
import { decodeBatch, isPlainBinary } from '../shared/contract/codec.js';
import { ContractError } from '../shared/contract/errors.js';
import { parseTopic, topics, type ParsedTopic } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';
import { createRegistry, startOpsServer } from '../shared/ops-server.js';
import { sleep } from '../shared/sleep.js';
import { mayPublish, maySubscribe, type AccessRefusal, type Identity } from './access.js';
import { Authenticator, normalSerial, type ConnectRefusal } from './authenticator.js';
import { DeadLetterStore } from './dead-letter.js';
import { readRevocationList } from './crl.js';
import { DeviceCredentials } from './device-credentials.js';
import { Listeners, type TlsFiles } from './listeners.js';
import { GuardedConnection, type GuardViolation } from './packet-guard.js';
import { statusProblem } from './status-check.js';
import { RateLimiter } from '../shared/rate-limiter.js';
import type { GatewayConfig } from './gateway-config.js';
import { sinkRecord, type Sink, type SinkRecord } from './sink.js';
import { ClusterLink, type ClusterPacket } from './cluster/cluster-link.js';

/**
 * The gateway's settings as gateway-config.ts declares and validates them, with its file
 * paths worked out by gatewayOptions.
 */
export type GatewayOptions = Pick<
  GatewayConfig,
  | 'host'
  | 'port'
  | 'maxPayloadBytes'
  | 'maxBatchReadings'
  | 'maxPublishesPerSecond'
  | 'publishBurst'
  | 'maxConnections'
  | 'connectTimeoutMs'
  | 'maxClockAheadMs'
  | 'auth'
  | 'serviceHost'
  | 'servicePort'
  | 'serviceToken'
  | 'deadLetterMaxBytes'
  | 'deadLetterMaxBytesPerVehicle'
  | 'sinkRetryBaseMs'
  | 'sinkRetryMaxMs'
  | 'opsHost'
  | 'opsPort'
  | 'clusterRedisUrl'
  | 'reusePort'
> & {
  /** aedes's broker id: unique in the cluster. */
  gatewayId: string;
  /** Hashed per-vehicle secrets (password mode). */
  credentialsPath: string;
  /** mqtts on the main port (mtls mode). */
  tls?: TlsFiles;
  deadLetterPath: string;
};

/** Why a publish was refused: the metric label and the log line say the same. */
type Refusal = AccessRefusal | 'oversize' | 'too_many_readings' | 'malformed' | 'clock_ahead' | 'bad_status' | 'rate_limited';

/** Why a connection was refused or cut before it could publish (fleet_gateway_connections_refused_total). */
type ConnectionRefusal = ConnectRefusal | GuardViolation | 'unsupported_protocol' | 'tls_handshake' | 'protocol_error';

/** Refusals that mean the client is misbehaving, not merely sending bad data: the connection is closed. */
const CLOSES_CONNECTION: ReadonlySet<Refusal> = new Set([
  'foreign_topic',
  'unknown_topic',
  'downlink_topic',
  'service_denied',
  'rate_limited',
]);

/** Room for the fixed header, topic and packet id around the largest payload allowed: other packets may be this long. */
const PACKET_OVERHEAD_BYTES = 64 * 1024 + 16;

interface PendingWrite {
  record: SinkRecord;
  /** aedes's authorizePublish callback: the PUBACK goes out when it is called without an error. */
  done: (err?: Error | null) => void;
}

interface ClientState {
  identity: Identity;
  limiter?: RateLimiter;
  /** Publishes waiting for the rate limiter. */
  throttled: number;
  /** Batches that arrived while the client's previous sink writes were under way. */
  queue: PendingWrite[];
  writing: boolean;
  /** The gateway the vehicle connected to since, which closes this session: its Last Will would say offline. */
  takenOverBy?: string;
}

/**
 * Sinks that keep the order of the writes made in one event-loop turn and, when a write of a
 * vehicle fails, fail every later write of that vehicle with it (one transaction, one produce
 * request, a per-vehicle queue). A client's waiting batches go to these together, so they share
 * one commit; the others get one batch of a client at a time.
 */
const KEEPS_TURN_ORDER: ReadonlySet<string> = new Set(['embedded', 'kafka', 'kinesis']);

/**
 * The MQTT front door. aedes holds a QoS 1 PUBACK until authorizePublish calls back, so
 * the PUBACK is sent only once every sink has the batch. Bad data from an authorized
 * vehicle is acknowledged and dead-lettered with its reason (closing the connection
 * would make the agent resend it forever); only a vehicle acting outside its own topics
 * is disconnected.
 */
export class Gateway {
  private broker?: Aedes;
  private listeners?: Listeners;
  private readonly authenticator: Authenticator;
  private readonly credentials?: DeviceCredentials;
  private ops?: HttpServer;
  private readonly deadLetters: DeadLetterStore;
  /** Serials the fleet CA's revocation list names (mtls), re-read when it changes. */
  private revoked: ReadonlySet<string> = new Set();
  private readonly clients = new WeakMap<Client, ClientState>();
  /** Connected clients by client id, so a revocation or another gateway's takeover can reach the sessions already open. */
  private readonly connected = new Map<string, Client>();
  /** Links this gateway to the others of its cluster, when it has one. */
  private cluster?: ClusterLink;
  /** Whether a client's waiting batches may be written together (see KEEPS_TURN_ORDER). */
  private readonly writesTogether: boolean;
  /**
   * Aborted by stop(): ends the waits of throttled publishes and of sink retries at once, so
   * none outlives the gateway or writes into a sink it has closed.
   */
  private readonly stopping = new AbortController();
  /** Clients' write loops under way; stop() lets them end before closing the sinks. */
  private readonly writing = new Set<Promise<void>>();
  readonly registry: Registry;
  private readonly metrics;

  constructor(
    readonly opts: GatewayOptions,
    private readonly sinks: Sink[],
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.registry = registry ?? createRegistry('gateway');
    // Every throttled publish and every retrying write waits on it: thousands at once are normal.
    setMaxListeners(0, this.stopping.signal);
    this.deadLetters = new DeadLetterStore(opts.deadLetterPath, {
      maxBytes: opts.deadLetterMaxBytes,
      maxBytesPerVehicle: opts.deadLetterMaxBytesPerVehicle,
    });
    if (opts.auth === 'password') {
      this.credentials = new DeviceCredentials(opts.credentialsPath, (err) => {
        if (err) return log.error({ err: err.message }, 'device credentials not reloaded; the previous ones stay in force');
        log.info('device credentials reloaded');
        this.disconnectRevoked();
      });
    }
    this.authenticator = new Authenticator(opts.auth, opts.serviceToken, this.credentials, (serial) => this.revoked.has(serial));
    this.writesTogether = sinks.every((s) => KEEPS_TURN_ORDER.has(s.name));
    const r = [this.registry];
    const broker = () => this.broker;
    const deadLetters = this.deadLetters;
    this.metrics = {
      batches: new Counter({ name: 'fleet_gateway_batches_accepted_total', help: 'Telemetry batches written to every sink', registers: r }),
      readings: new Counter({ name: 'fleet_gateway_readings_accepted_total', help: 'Readings written to every sink', registers: r }),
      refused: new Counter({
        name: 'fleet_gateway_refused_total',
        help: 'Publishes refused, by reason',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      connectRefused: new Counter({
        name: 'fleet_gateway_connections_refused_total',
        help: 'Connections refused (CONNACK with an error) or cut before or outside MQTT (no CONNECT in time, a failed TLS handshake, an oversize packet), by reason',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      subscribeRefused: new Counter({
        name: 'fleet_gateway_subscriptions_refused_total',
        help: 'Subscriptions refused, by reason',
        labelNames: ['reason'] as const,
        registers: r,
      }),
      throttled: new Counter({
        name: 'fleet_gateway_publishes_throttled_total',
        help: 'Publishes whose PUBACK waited for the per-client rate limit',
        registers: r,
      }),
      sinkErrors: new Counter({
        name: 'fleet_gateway_sink_errors_total',
        help: 'Failed sink writes (retried)',
        labelNames: ['sink'] as const,
        registers: r,
      }),
      pubackDelay: new Histogram({
        name: 'fleet_gateway_sink_write_seconds',
        help: 'Time from receiving a batch to every sink having it (the PUBACK delay)',
        buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
        registers: r,
      }),
      deadLettersDropped: new Counter({
        name: 'fleet_gateway_dead_letters_dropped_total',
        help: "Dead letters deleted, oldest first, to make room for newer ones within a cap: the vehicle's share or the store's",
        labelNames: ['cap'] as const,
        registers: r,
      }),
      deadLetterBytes: new Gauge({
        name: 'fleet_gateway_dead_letter_bytes',
        help: 'Bytes of payload, topic and reason held in the dead-letter store',
        registers: r,
        collect(this: Gauge) {
          this.set(deadLetters.stats().bytes);
        },
      }),
      takenOver: new Counter({
        name: 'fleet_gateway_sessions_taken_over_total',
        help: 'Sessions closed here because their client connected to another gateway of the cluster',
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
    const tls = this.opts.tls;
    if (tls?.crl) this.revoked = readRevocationList(tls.crl, tls.ca);
    this.credentials?.load();
    for (const sink of this.sinks) await sink.start();
    if (this.opts.clusterRedisUrl) {
      this.cluster = new ClusterLink(
        { redisUrl: this.opts.clusterRedisUrl, gatewayId: this.opts.gatewayId },
        this.log,
        this.registry,
        (packet) => this.fromCluster(packet),
      );
      this.cluster.start();
    }
    this.broker = await Aedes.createBroker({
      id: this.opts.gatewayId,
      mq: this.cluster,
      // The packet guard cuts a connection without CONNECT first, naming why; aedes's own timer is a backstop.
      connectTimeout: 2 * this.opts.connectTimeoutMs,
      preConnect: (client, packet, done) => {
        this.checkProtocol(client, packet);
        done(null, true);
      },
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.authorizeSubscribe(client, sub, done),
    });
    this.broker.on('clientReady', (c) => {
      this.connected.set(c.id, c);
      this.log.info({ vehicle: this.vehicleOf(c) }, 'client connected');
    });
    this.broker.on('clientDisconnect', (c) => {
      if (this.connected.get(c.id) === c) this.connected.delete(c.id);
      this.log.info({ vehicle: this.vehicleOf(c) }, 'client disconnected');
    });
    this.broker.on('clientError', (c, err) => this.clientFailed(c, err));
    this.broker.on('connectionError', (c, err) => this.clientFailed(c, err));
    const { opts } = this;
    this.listeners = new Listeners({
      host: opts.host,
      port: opts.port,
      reusePort: opts.reusePort,
      tls: opts.tls,
      serviceHost: opts.serviceHost,
      servicePort: opts.servicePort,
      limits: {
        maxPayloadBytes: opts.maxPayloadBytes,
        maxPacketBytes: opts.maxPayloadBytes + PACKET_OVERHEAD_BYTES,
        connectTimeoutMs: opts.connectTimeoutMs,
      },
      onViolation: (conn, reason, detail) => this.connectionCut(conn, reason, detail),
      onTlsFailure: (socket, detail) => this.connectionRefused('tls_handshake', detail, { remote: socket.remoteAddress }),
      onTlsReload: (err) => {
        if (err) return this.log.error({ err: err.message }, 'TLS files not reloaded; the previous ones stay in force');
        this.log.info('TLS files reloaded');
        this.reloadRevocations();
        this.disconnectRevoked();
      },
    });
    await this.listeners.start(this.broker.handle);
    if (opts.opsPort >= 0) {
      this.ops = await startOpsServer(opts.opsHost, opts.opsPort, this.registry, () => this.health(), this.log);
    }
    this.log.info(
      {
        port: this.port,
        servicePort: this.listeners.servicePort,
        auth: opts.auth,
        tls: opts.tls !== undefined,
        sinks: this.sinks.map((s) => s.name),
        gatewayId: opts.gatewayId,
        cluster: this.cluster !== undefined,
      },
      'gateway listening',
    );
  }

  get port(): number {
    return this.listeners?.port ?? this.opts.port;
  }

  /** The plain listener for cloud services, when there is one. */
  get servicePort(): number | undefined {
    return this.listeners?.servicePort;
  }

  health() {
    const sinks = Object.fromEntries(this.sinks.map((s) => [s.name, s.health()]));
    const clients = this.broker?.connectedClients ?? 0;
    return {
      ok: Object.values(sinks).every((h) => h.ok),
      clients,
      connections: { open: this.openConnections(), authenticated: clients, max: this.opts.maxConnections },
      deadLetters: this.deadLetterHealth(),
      sinks,
      // Not part of `ok`: a gateway without its cluster link still takes telemetry, and a
      // balancer that dropped every gateway when Redis went down would stop the whole fleet.
      ...(this.cluster ? { cluster: this.cluster.health() } : {}),
    };
  }

  /** The dead-letter store's fill, and in words what it had to delete. */
  private deadLetterHealth() {
    const s = this.deadLetters.stats();
    const detail =
      s.dropped > 0
        ? `${s.dropped} oldest dead letters deleted since start to stay within ${this.opts.deadLetterMaxBytes} bytes (${this.opts.deadLetterMaxBytesPerVehicle} per vehicle)`
        : undefined;
    return {
      letters: s.letters,
      bytes: s.bytes,
      maxBytes: this.opts.deadLetterMaxBytes,
      dropped: s.dropped,
      ...(detail ? { detail } : {}),
    };
  }

  /** Sockets open on the listeners, authenticated or not. */
  private openConnections(): number {
    return this.listeners?.openConnections ?? 0;
  }

  /** Publishes as the gateway itself (used by in-process parts). */
  publish(topic: string, payload: Buffer, qos: 0 | 1 = 1): Promise<void> {
    return new Promise((resolve, reject) =>
      this.broker!.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
    );
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.ops?.close();
    // The broker first: it disconnects the clients, which closing the listeners would otherwise wait for.
    const closed = this.listeners?.closed();
    await new Promise<void>((resolve) => (this.broker ? this.broker.close(() => resolve()) : resolve()));
    await closed;
    // Their retries cut short, the writes under way end before the sinks close under them.
    await Promise.all(this.writing);
    for (const sink of this.sinks) await sink.close();
    this.credentials?.close();
    this.deadLetters.close();
    this.log.info('gateway stopped');
  }

  /**
   * A message from another gateway of the cluster, before it is delivered here. A client that
   * connected there is closed here by aedes (`$SYS/{gateway}/new/clients`); marked first, so
   * its Last Will, which would say offline, is not published. A retained status is kept, as
   * if published here, so a service subscribing here is given every vehicle's.
   */
  private async fromCluster(packet: ClusterPacket): Promise<void> {
    const announced = /^\$SYS\/([^/]+)\/new\/clients$/.exec(packet.topic);
    if (announced) {
      const client = this.connected.get(packet.payload.toString('utf8'));
      const state = client && this.clients.get(client);
      if (!client || !state) return;
      state.takenOverBy = announced[1]!;
      this.metrics.takenOver.inc();
      this.log.info(
        { vehicle: this.vehicleOf(client), gateway: announced[1] },
        'client connected to another gateway: its session here is closed',
      );
    } else if (packet.retain && this.broker) {
      await persistenceOf(this.broker).storeRetained(packet);
    }
  }

  /** A vehicle revoked while connected is cut off at once, not only refused when it comes back. */
  private disconnectRevoked(): void {
    for (const client of this.connected.values()) {
      const vehicle = this.vehicleOf(client);
      if (vehicle === undefined) continue;
      const socket = socketOf(client);
      const serial = socket instanceof TLSSocket ? normalSerial(socket.getPeerCertificate().serialNumber ?? '') : undefined;
      const revoked = this.credentials?.admits(vehicle) === false || (serial !== undefined && this.revoked.has(serial));
      if (!revoked) continue;
      this.metrics.connectRefused.inc({ reason: 'revoked' });
      this.log.warn({ vehicle, reason: 'revoked', serial }, 'revoked vehicle disconnected');
      client.close();
    }
  }

  /** A revocation list that cannot be read or parsed leaves the previous one in force. */
  private reloadRevocations(): void {
    const tls = this.opts.tls;
    const crl = tls?.crl;
    if (!tls || !crl) return;
    try {
      this.revoked = readRevocationList(crl, tls.ca);
    } catch (err) {
      this.log.error({ err: (err as Error).message, crl }, 'revocation list not reloaded; the previous one stays in force');
    }
  }

  /** aedes answers an MQTT version it does not speak (MQTT 5) with its own CONNACK; the gateway says why and counts it. */
  private checkProtocol(client: Client, packet: ConnectPacket): void {
    if (packet.protocolVersion === 4 || packet.protocolVersion === 3) return;
    const version = packet.protocolVersion === 5 ? 'MQTT 5' : `protocol level ${packet.protocolVersion}`;
    this.connectionRefused('unsupported_protocol', `${version}: the gateway speaks MQTT 3.1.1 (protocol level 4)`, {
      clientId: packet.clientId,
      remote: socketOf(client)?.remoteAddress,
    });
  }

  /** A refusal before the connection could publish: counted by reason and logged with it. */
  private connectionRefused(
    reason: ConnectionRefusal,
    detail: string,
    who: { vehicle?: string; clientId?: string; username?: string; remote?: string },
  ): void {
    this.metrics.connectRefused.inc({ reason });
    this.log.warn({ ...who, reason, detail }, 'connection refused');
  }

  /**
   * An error on a client's connection. CONNACK refusals carry aedes's `errorCode` and were
   * reported where they were decided; a socket error, or a write to a connection already
   * closed, is a client gone, not a refusal. Bytes aedes cannot take from a client that has
   * not authenticated are a refusal.
   */
  private clientFailed(client: Client, err: Error & { errorCode?: number; code?: string }): void {
    if (err.errorCode !== undefined) return;
    const who = { vehicle: this.vehicleOf(client), remote: socketOf(client)?.remoteAddress, err: err.message };
    if (client.closed || err.code !== undefined) return this.log.info(who, 'client connection lost');
    if (this.clients.has(client)) return this.log.warn(who, 'client error');
    this.connectionRefused('protocol_error', err.message, who);
  }

  private vehicleOf(client: Client): string | undefined {
    const who = this.clients.get(client)?.identity;
    return who?.kind === 'vehicle' ? who.vehicle : undefined;
  }

  private authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: AuthenticateError | null, ok: boolean | null) => void,
  ): void {
    const refused = (code: number, reason: ConnectRefusal, detail: string) => {
      this.connectionRefused(reason, detail, { clientId: client.id, username, remote: socketOf(client)?.remoteAddress });
      done(authError(`${reason}: ${detail}`, code), false);
    };
    // This connection is among the open ones, as is every other not yet authenticated.
    const open = this.openConnections();
    if (open > this.opts.maxConnections) {
      const pending = open - (this.broker?.connectedClients ?? 0);
      return refused(
        3,
        'too_many_connections',
        `the gateway holds its limit of ${this.opts.maxConnections} connections (${pending} of them, this one included, not yet authenticated)`,
      );
    }
    const result = this.authenticator.check({ clientId: client.id, username, password, socket: socketOf(client) });
    if (!result.ok) return refused(result.code, result.reason, result.detail);
    const { identity } = result;
    const limited = identity.kind === 'vehicle' && this.opts.maxPublishesPerSecond > 0;
    this.clients.set(client, {
      identity,
      limiter: limited ? new RateLimiter(this.opts.maxPublishesPerSecond, this.opts.publishBurst) : undefined,
      throttled: 0,
      queue: [],
      writing: false,
    });
    done(null, true);
  }

  private authorizeSubscribe(client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void {
    const who = this.clients.get(client)?.identity;
    const decision = who
      ? maySubscribe(who, sub.topic)
      : { ok: false as const, reason: 'unknown_topic' as const, detail: 'not authenticated' };
    if (decision.ok) return done(null, sub);
    this.metrics.subscribeRefused.inc({ reason: decision.reason });
    this.log.warn(
      { vehicle: this.vehicleOf(client), topic: sub.topic, reason: decision.reason, detail: decision.detail },
      'subscription refused',
    );
    // A null subscription makes aedes answer SUBACK 0x80 (failure) for this filter and keep the connection.
    done(null, null);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    if (client === null) return done(null); // the gateway's own publishes
    const takenOverBy = this.clients.get(client)?.takenOverBy;
    // The only publish of a session being closed is its Last Will, and the vehicle is online elsewhere.
    if (takenOverBy !== undefined) {
      this.log.info({ vehicle: client.id, gateway: takenOverBy, topic: packet.topic }, 'Last Will of a session taken over not published');
      return done(new Error(`the session was taken over by gateway ${takenOverBy}`));
    }
    // Taken first, so that every PUBLISH is looked at in the order the guard saw them.
    const sentBytes = client.conn instanceof GuardedConnection ? client.conn.takeShortened(packet.topic) : undefined;
    const state = this.clients.get(client);
    if (!state) return done(new Error('publish before authentication'));
    const t = parseTopic(packet.topic);
    const access = mayPublish(state.identity, packet.topic, t);
    if (!access.ok) return this.refuse(client, packet, access.reason, access.detail, done);
    // A vehicle's publish within its rights is on one of its own topics, so `t` is set.
    if (state.identity.kind === 'service' || !t) {
      if (sentBytes === undefined) return done(null);
      // Never forwarded cut short; a service has no rejected topic to be told on.
      const detail = oversizeDetail(sentBytes, this.opts.maxPayloadBytes);
      this.metrics.refused.inc({ reason: 'oversize' });
      this.log.warn({ topic: packet.topic, reason: 'oversize', detail }, 'service publish refused, connection closed');
      return done(new Error(`oversize: ${detail}`));
    }
    const wait = state.limiter?.reserve() ?? 0;
    if (wait === 0) return this.admit(client, state, packet, t, sentBytes, done);
    if (state.throttled >= this.opts.publishBurst) {
      return this.refuse(
        client,
        packet,
        'rate_limited',
        `more than ${this.opts.maxPublishesPerSecond} publishes/s with ${state.throttled} already waiting`,
        done,
      );
    }
    // Waiting keeps the publish: the PUBACK comes late, and the agent's in-flight window slows it down.
    state.throttled++;
    this.metrics.throttled.inc();
    void sleep(wait, this.stopping.signal).then(() => {
      state.throttled--;
      // A stopped gateway leaves the publish unacknowledged: the agent still holds it.
      if (!client.closed && !this.stopping.signal.aborted) this.admit(client, state, packet, t, sentBytes, done);
    });
  }

  /**
   * Checks and queues a vehicle's publish that is within its rights and its rate. `sentBytes`
   * is set when the packet guard cut the payload short: the size the vehicle sent.
   */
  private admit(
    client: Client,
    state: ClientState,
    packet: PublishPacket,
    t: ParsedTopic,
    sentBytes: number | undefined,
    done: (err?: Error | null) => void,
  ): void {
    const payload = packet.payload as Buffer;
    if (sentBytes !== undefined) return this.refuse(client, packet, 'oversize', oversizeDetail(sentBytes, this.opts.maxPayloadBytes), done);
    const receivedAt = Date.now();
    if (t.kind === 'status') {
      const problem = statusProblem(payload, receivedAt, this.opts.maxClockAheadMs);
      return problem ? this.refuse(client, packet, 'bad_status', problem, done) : done(null);
    }
    if (t.kind === 'alert-acks') {
      // Passed on to the dispatchers as it is; only its shape is checked here.
      const read = readAlertAck(t.vehicle, payload);
      return 'problem' in read ? this.refuse(client, packet, 'malformed', read.problem, done) : done(null);
    }
    let batch: Batch;
    try {
      batch = decodeBatch(t.vehicle, payload, receivedAt);
    } catch (err) {
      if (!(err instanceof ContractError)) throw err;
      return this.refuse(client, packet, 'malformed', err.message, done);
    }
    if (batch.readings.length > this.opts.maxBatchReadings) {
      return this.refuse(
        client,
        packet,
        'too_many_readings',
        `${batch.readings.length} readings exceed the limit of ${this.opts.maxBatchReadings} per batch`,
        done,
      );
    }
    const ahead = this.clockAhead(batch, receivedAt);
    if (ahead !== undefined) {
      if (ahead.batch === undefined) return this.refuse(client, packet, 'clock_ahead', ahead.detail, done);
      this.noteRefused(client.id, packet, 'clock_ahead', ahead.detail);
      batch = ahead.batch;
    }
    // Encoded once here, every sink carrying the same bytes; a batch accepted whole as the agent encoded it is not encoded again.
    const encoded = ahead === undefined && isPlainBinary(payload) ? payload : undefined;
    state.queue.push({ record: sinkRecord(batch, receivedAt, encoded), done });
    if (state.writing) return;
    const writes = this.writeQueued(client, state);
    this.writing.add(writes);
    void writes.finally(() => this.writing.delete(writes));
  }

  /**
   * Holds the batch's event times to the gateway's clock: readings stamped beyond the margin
   * are split off (the rest of the batch goes on, so one bad clock reading does not hold
   * back an overheat), and a headTs beyond it is replaced by the receive time. Undefined when
   * all is in time; `batch` undefined when nothing of it is.
   */
  private clockAhead(batch: Batch, receivedAt: number): { batch?: Batch; detail: string } | undefined {
    const limit = receivedAt + this.opts.maxClockAheadMs;
    const late = batch.readings.filter((r) => r.ts > limit);
    if (late.length === 0 && batch.headTs <= limit) return undefined;
    const margin = `more than ${this.opts.maxClockAheadMs} ms ahead of the gateway's clock (${new Date(receivedAt).toISOString()})`;
    const problems: string[] = [];
    if (late.length > 0) {
      const seqs =
        late.length > 5
          ? `${late
              .slice(0, 5)
              .map((r) => r.seq)
              .join(', ')} and ${late.length - 5} more`
          : late.map((r) => r.seq).join(', ');
      problems.push(`readings with seq ${seqs} are stamped ${margin}, e.g. ts ${late[0]!.ts} (${new Date(late[0]!.ts).toISOString()})`);
    }
    if (batch.headTs > limit) problems.push(`batch.headTs ${batch.headTs} is ${margin}; the receive time stands in for it`);
    const readings = batch.readings.filter((r) => r.ts <= limit);
    const detail = problems.join('; ');
    if (readings.length === 0) return { detail };
    return { batch: { ...batch, readings, headTs: Math.min(batch.headTs, Math.max(receivedAt, readings.at(-1)!.ts)) }, detail };
  }

  /**
   * The packet guard cut a connection: a packet other than PUBLISH too large to buffer, or
   * no CONNECT in time. A vehicle is told why on its rejected topic first (its persistent
   * session keeps the notice for its next connection).
   */
  private connectionCut(conn: GuardedConnection, reason: GuardViolation, detail: string): void {
    const client = [...this.connected.values()].find((c) => c.conn === conn);
    const vehicle = client && this.vehicleOf(client);
    this.metrics.connectRefused.inc({ reason });
    this.log.warn({ vehicle, remote: conn.socket.remoteAddress, reason, detail }, 'connection cut');
    if (vehicle === undefined) return;
    this.publish(topics.rejected(vehicle), rejectionNotice(reason, detail, '')).catch((err: Error) =>
      this.log.warn({ vehicle, err: err.message }, 'rejection notice not sent'),
    );
  }

  /**
   * Writes a client's batches in arrival order, one group at a time: a group is everything
   * that arrived while the previous one was being written (or a single batch, see
   * KEEPS_TURN_ORDER). aedes handles the publishes of one socket read concurrently, so with
   * several in flight per client this is what lets them share a commit instead of each
   * waiting for the one before it.
   */
  private async writeQueued(client: Client, state: ClientState): Promise<void> {
    state.writing = true;
    while (state.queue.length > 0) {
      const group = this.writesTogether ? state.queue.splice(0) : state.queue.splice(0, 1);
      try {
        await this.writeToSinks(client, group);
      } catch (err) {
        for (const w of group) w.done(err as Error);
        continue;
      }
      for (const w of group) {
        this.metrics.batches.inc();
        this.metrics.readings.inc(w.record.batch.readings.length);
        this.metrics.pubackDelay.observe((Date.now() - w.record.receivedAt) / 1000);
        w.done(null);
      }
    }
    state.writing = false;
  }

  /**
   * Writes a group to every sink, in order and in one turn, retrying a failing sink with
   * backoff for as long as the client stays connected: the PUBACKs are held meanwhile and the
   * agent keeps buffering. A retry resends from the first batch that failed, so the sink
   * still receives the client's batches in order.
   */
  private async writeToSinks(client: Client, group: PendingWrite[]): Promise<void> {
    const { signal } = this.stopping;
    if (signal.aborted) throw new Error('the gateway is stopping');
    await Promise.all(
      this.sinks.map(async (sink) => {
        let left = group;
        for (let attempt = 0; ; attempt++) {
          const results = await Promise.allSettled(left.map((w) => sink.write(w.record)));
          const failed = results.findIndex((r) => r.status === 'rejected');
          if (failed < 0) return;
          const err = (results[failed] as PromiseRejectedResult).reason as Error;
          left = left.slice(failed);
          this.metrics.sinkErrors.inc({ sink: sink.name });
          if (client.closed) throw new Error(`sink ${sink.name} failed and the client left: ${err.message}`);
          if (signal.aborted) throw new Error(`sink ${sink.name} failed and the gateway is stopping: ${err.message}`);
          const delay = backoffDelay(attempt, this.opts.sinkRetryBaseMs, this.opts.sinkRetryMaxMs);
          this.log.error(
            { vehicle: client.id, sink: sink.name, err: err.message, retryInMs: Math.round(delay) },
            'sink write failed, PUBACK held',
          );
          await sleep(delay, signal);
          if (signal.aborted) throw new Error(`the gateway stopped before sink ${sink.name} recovered: ${err.message}`);
        }
      }),
    );
  }

  private refuse(client: Client, packet: PublishPacket, reason: Refusal, detail: string, done: (err?: Error | null) => void): void {
    const vehicle = client.id;
    this.metrics.refused.inc({ reason });
    if (CLOSES_CONNECTION.has(reason)) this.metrics.connectRefused.inc({ reason });
    this.log.warn({ vehicle, topic: packet.topic, reason, detail }, 'publish refused');
    if (CLOSES_CONNECTION.has(reason)) return done(new Error(`${reason}: ${detail}`));
    this.keepDeadLetter(vehicle, packet, reason, detail);
    // The publish goes ahead acknowledged, turned into the vehicle's own rejection notice.
    packet.payload = rejectionNotice(reason, detail, packet.topic);
    packet.topic = topics.rejected(vehicle);
    packet.retain = false;
    done(null);
  }

  /** Keeps a refused payload with its reason; older letters make room within the store's caps, and are counted. */
  private keepDeadLetter(vehicle: string, packet: PublishPacket, reason: Refusal, detail: string): void {
    const dropped = this.deadLetters.put({
      vehicle,
      topic: packet.topic,
      reason: `${reason}: ${detail}`,
      receivedAt: Date.now(),
      payload: packet.payload as Buffer,
    });
    if (dropped.vehicle > 0) this.metrics.deadLettersDropped.inc({ cap: 'vehicle' }, dropped.vehicle);
    if (dropped.store > 0) this.metrics.deadLettersDropped.inc({ cap: 'store' }, dropped.store);
  }

  /**
   * Part of a publish refused while the rest goes on to the sinks: the whole payload is kept
   * with the reason (naming what was refused), and the vehicle is told on its own topic.
   */
  private noteRefused(vehicle: string, packet: PublishPacket, reason: Refusal, detail: string): void {
    this.metrics.refused.inc({ reason });
    this.log.warn({ vehicle, topic: packet.topic, reason, detail }, 'part of a publish refused');
    this.keepDeadLetter(vehicle, packet, reason, detail);
    this.publish(topics.rejected(vehicle), rejectionNotice(reason, detail, packet.topic)).catch((err: Error) =>
      this.log.warn({ vehicle, err: err.message }, 'rejection notice not sent'),
    );
  }
}

/** aedes keeps its persistence on the broker without declaring it; this is the one call made on it here. */
function persistenceOf(broker: Aedes): { storeRetained(packet: ClusterPacket): Promise<void> } {
  return (broker as unknown as { persistence: { storeRetained(packet: ClusterPacket): Promise<void> } }).persistence;
}

/** The client's own socket, under the packet guard every listener puts in front of aedes. */
const socketOf = (client: Client): Socket | undefined => (client.conn instanceof GuardedConnection ? client.conn.socket : undefined);

const oversizeDetail = (sentBytes: number, limit: number) =>
  `payload of ${sentBytes} bytes exceeds the limit of ${limit}; its first ${limit} bytes are kept`;

function authError(message: string, returnCode: number): AuthenticateError {
  return Object.assign<Error, Pick<AuthenticateError, 'returnCode'>>(new Error(message), { returnCode });
}

function rejectionNotice(reason: Refusal | GuardViolation, detail: string, topic: string): Buffer {
  return Buffer.from(JSON.stringify({ reason, detail, topic, at: Date.now() }));
}
