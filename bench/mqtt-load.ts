/**
 * Lean MQTT 3.1.1 load generators on raw sockets, PUBACKs parsed by hand. mqtt.js spends more
 * CPU per message than a fast broker does, so with it the benchmark would measure the client.
 * runLoad is a closed loop for a broker's throughput: one pre-built PUBLISH per in-flight slot,
 * one write of a ready buffer per message, the same generator for every broker compared.
 * Fleet is a fleet of vehicles at their real pace, for the pipeline end to end.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { topics } from '../shared/contract/topics.js';

export interface LoadOptions {
  port: number;
  clients: number;
  /** Publishes each client keeps unacknowledged (closed loop: a PUBACK sends the next). */
  inflight: number;
  warmupMs: number;
  durationMs: number;
  clientId(i: number): string;
  topic(i: number): string;
  payload(i: number): Buffer;
  /** Called when the measured interval begins (after the warm-up). */
  onMeasure?(): void;
  /** Called for every PUBACK in the measured interval, with its latency: for a figure over time. */
  onAck?(latencyMs: number): void;
}

export interface LoadResult {
  messages: number;
  seconds: number;
  /** PUBACK latency of every message acknowledged in the measured interval, ms, ascending. */
  latencies: Float64Array;
}

const CONNACK = 0x20;
const PUBACK = 0x40;
const CONNECT_TIMEOUT_MS = 10_000;

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function connectPacket(clientId: string): Buffer {
  // Clean session off, as the agent connects; keepalive 0: no PINGREQ during a run.
  const body = Buffer.concat([str('MQTT'), Buffer.from([4, 0x00, 0, 0]), str(clientId)]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** A QoS 1 PUBLISH with packet id `id`. */
function publishPacket(topic: string, id: number, payload: Buffer): Buffer {
  const body = Buffer.concat([str(topic), Buffer.from([id >> 8, id & 0xff]), payload]);
  return Buffer.concat([Buffer.from([0x32, ...remainingLength(body.length)]), body]);
}

class LoadClient {
  private readonly socket: Socket;
  /** Slot k always carries packet id k + 1: a slot is reused only after its PUBACK. */
  private readonly packets: Buffer[];
  private readonly sentAt: Float64Array;
  private pending = Buffer.alloc(0);
  private connected?: () => void;
  private failed?: (err: Error) => void;
  running = false;
  outstanding = 0;
  /** Set when the connection failed during the run: the measurement is then void. */
  error?: Error;

  constructor(
    port: number,
    private readonly id: string,
    topic: string,
    payload: Buffer,
    inflight: number,
    private readonly onAck: (latencyMs: number) => void,
  ) {
    this.packets = Array.from({ length: inflight }, (_, k) => publishPacket(topic, k + 1, payload));
    this.sentAt = new Float64Array(inflight);
    this.socket = connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (d) => this.read(d));
    this.socket.on('error', (err) => this.failed?.(err));
    this.socket.on('close', () => this.failed?.(new Error(`${this.id}: connection closed by the broker`)));
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id}: no CONNACK within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      this.connected = () => (clearTimeout(timer), resolve());
      this.failed = (err) => (clearTimeout(timer), reject(err));
      this.socket.write(connectPacket(this.id));
    });
  }

  start(): void {
    this.running = true;
    this.failed = (err) => {
      if (this.running) this.error ??= err;
    };
    this.socket.cork();
    for (let k = 0; k < this.packets.length; k++) this.send(k);
    this.socket.uncork();
  }

  close(): void {
    this.failed = undefined;
    this.socket.destroy();
  }

  private send(slot: number): void {
    this.sentAt[slot] = performance.now();
    this.outstanding++;
    this.socket.write(this.packets[slot]!);
  }

  private read(d: Buffer): void {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, d]) : d;
    // Resends from one read go out in one write.
    this.socket.cork();
    const rest = eachPacket(buf, (type, _flags, body) => {
      if (type === CONNACK) {
        if (body[1] !== 0) this.failed?.(new Error(`${this.id}: CONNACK return code ${body[1]}`));
        else this.connected?.();
      } else if (type === PUBACK) {
        const slot = ((body[0]! << 8) | body[1]!) - 1;
        this.outstanding--;
        this.onAck(performance.now() - this.sentAt[slot]!);
        if (this.running) this.send(slot);
      }
    });
    this.socket.uncork();
    this.pending = rest.length > 0 ? Buffer.from(rest) : Buffer.alloc(0);
  }
}

/** Connects every client, runs the closed loop, and measures after the warm-up. */
export async function runLoad(o: LoadOptions, log: (msg: string) => void): Promise<LoadResult> {
  let measuring = false;
  let messages = 0;
  let latencies = new Float64Array(1 << 20);
  const onAck = (ms: number) => {
    if (!measuring) return;
    o.onAck?.(ms);
    if (messages === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[messages++] = ms;
  };
  const clients = Array.from(
    { length: o.clients },
    (_, i) => new LoadClient(o.port, o.clientId(i), o.topic(i), o.payload(i), o.inflight, onAck),
  );
  try {
    await Promise.all(clients.map((c) => c.open()));
    log(`${o.clients} clients connected, ${o.inflight} publishes in flight each`);
    for (const c of clients) c.start();
    await new Promise((r) => setTimeout(r, o.warmupMs));
    measuring = true;
    o.onMeasure?.();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, o.durationMs));
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    for (const c of clients) c.running = false;
    const broken = clients.find((c) => c.error);
    if (broken) throw broken.error!;
    // Let what is in flight be acknowledged, so the broker is idle for the next measurement.
    const deadline = Date.now() + 10_000;
    while (clients.some((c) => c.outstanding > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return { messages, seconds, latencies: latencies.slice(0, messages).sort() };
  } finally {
    for (const c of clients) c.close();
  }
}

const SUBACK = 0x90;
const PUBLISH = 0x30;

/** Splits whole MQTT packets off the front of `buf`; returns what is left of an unfinished one. */
function eachPacket(buf: Buffer, onPacket: (type: number, flags: number, body: Buffer) => void): Buffer {
  for (;;) {
    if (buf.length < 2) return buf;
    let len = 0;
    let mul = 1;
    let i = 1;
    for (; i < 5 && i < buf.length; i++) {
      len += (buf[i]! & 0x7f) * mul;
      mul *= 128;
      if ((buf[i]! & 0x80) === 0) break;
    }
    if (i >= buf.length || buf.length < i + 1 + len) return buf;
    onPacket(buf[0]! & 0xf0, buf[0]! & 0x0f, buf.subarray(i + 1, i + 1 + len));
    buf = buf.subarray(i + 1 + len);
  }
}

function subscribePacket(topic: string, id: number): Buffer {
  const body = Buffer.concat([Buffer.from([id >> 8, id & 0xff]), str(topic), Buffer.from([1])]);
  return Buffer.concat([Buffer.from([0x82, ...remainingLength(body.length)]), body]);
}

/** A retained QoS 0 PUBLISH: no packet id, no PUBACK. */
function retainedPacket(topic: string, payload: Buffer): Buffer {
  const body = Buffer.concat([str(topic), payload]);
  return Buffer.concat([Buffer.from([0x31, ...remainingLength(body.length)]), body]);
}

export interface FleetOptions {
  port: number;
  vehicles: number;
  /** Each vehicle's client id, and the vehicle its topics name. */
  vehicle(i: number): string;
  /** One publish a second per vehicle: its batch of the last second, encoded as the agent does (seq and ts its own). */
  batch(i: number, seq: number, now: number): { payload: Buffer; readings: number };
  /** Connections opened at once while the fleet connects. */
  connectConcurrency?: number;
}

/** A message the gateway delivered on a vehicle's alerts topic, as the cab receives it. */
export interface CabMessage {
  vehicle: number;
  payload: Buffer;
  receivedAt: number;
}

/**
 * A fleet of vehicles speaking the agent's wire format, one MQTT session each, all in this
 * process: every vehicle publishes its batch once a second at QoS 1 (the ticks spread over the
 * second) and is subscribed, as its cab is, to its alerts topic. No buffer, no SQLite, no
 * mqtt.js: what it costs is the encoding and a socket write, so the pipeline behind the gateway
 * is what a run measures, not the vehicles.
 */
export class Fleet {
  private readonly sockets: Socket[] = [];
  private readonly seq: number[];
  private timer?: NodeJS.Timeout;
  private tick = 0;
  /** Publishes sent and not yet acknowledged, over the fleet. */
  outstanding = 0;
  published = 0;
  acknowledged = 0;
  readings = 0;
  /** Set when a connection failed during the run. */
  error?: Error;

  constructor(
    private readonly o: FleetOptions,
    private readonly onCab: (m: CabMessage) => void,
  ) {
    this.seq = new Array<number>(o.vehicles).fill(1);
  }

  /** Connects every vehicle (CONNECT, then SUBSCRIBE to its alerts topic) and resolves once all have their SUBACK. */
  async connect(): Promise<void> {
    const batch = this.o.connectConcurrency ?? 200;
    for (let from = 0; from < this.o.vehicles; from += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, this.o.vehicles - from) }, (_, k) => this.open(from + k)));
    }
  }

  /** Starts publishing: each vehicle once a second, a tenth of the fleet every 100 ms. */
  start(): void {
    const t0 = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      // Ticks the timer was late for are caught up: the fleet keeps its pace on a busy machine.
      for (; this.tick <= (now - t0) / 100; this.tick++) {
        for (let i = this.tick % 10; i < this.o.vehicles; i += 10) this.publish(i, now);
      }
    }, 100);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  close(): void {
    this.stop();
    for (const s of this.sockets) s.destroy();
  }

  private publish(i: number, now: number): void {
    const { payload, readings } = this.o.batch(i, this.seq[i]!, now);
    this.seq[i]! += readings;
    // Packet ids cycle per vehicle; at one publish a second none is reused while in flight.
    const id = (this.published % 65_535) + 1;
    this.published++;
    this.outstanding++;
    this.readings += readings;
    this.sockets[i]!.write(publishPacket(topics.telemetry(this.o.vehicle(i)), id, payload));
  }

  private open(i: number): Promise<void> {
    const vehicle = this.o.vehicle(i);
    return new Promise((resolve, reject) => {
      const socket = connect(this.o.port, '127.0.0.1');
      this.sockets[i] = socket;
      socket.setNoDelay(true);
      let pending = Buffer.alloc(0);
      let ready = false;
      const timer = setTimeout(() => reject(new Error(`${vehicle}: no SUBACK within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timer);
        if (ready) this.error ??= err;
        else reject(err);
      };
      socket.on('error', fail);
      socket.on('close', () => fail(new Error(`${vehicle}: connection closed by the gateway`)));
      socket.on('data', (d: Buffer) => {
        const buf = pending.length > 0 ? Buffer.concat([pending, d]) : d;
        const rest = eachPacket(buf, (type, flags, body) => {
          if (type === CONNACK) {
            if (body[1] !== 0) fail(new Error(`${vehicle}: CONNACK return code ${body[1]}`));
            else socket.write(subscribePacket(topics.alerts(vehicle), 1));
          } else if (type === SUBACK) {
            // Online, as the agent says on connecting: the dispatcher sends a cab its alerts only then.
            socket.write(retainedPacket(topics.status(vehicle), Buffer.from(JSON.stringify({ online: true, at: Date.now() }))));
            ready = true;
            clearTimeout(timer);
            resolve();
          } else if (type === PUBACK) {
            this.outstanding--;
            this.acknowledged++;
          } else if (type === PUBLISH) {
            const receivedAt = Date.now();
            const topicLength = (body[0]! << 8) | body[1]!;
            const qos = (flags >> 1) & 3;
            const payloadAt = 2 + topicLength + (qos > 0 ? 2 : 0);
            if (qos > 0) socket.write(Buffer.from([PUBACK, 2, body[2 + topicLength]!, body[3 + topicLength]!]));
            this.onCab({ vehicle: i, payload: Buffer.from(body.subarray(payloadAt)), receivedAt });
          }
        });
        pending = rest.length > 0 ? Buffer.from(rest) : Buffer.alloc(0);
      });
      socket.write(connectPacket(vehicle));
    });
  }
}
