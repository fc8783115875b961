/**
 * A lean MQTT 3.1.1 load generator: raw sockets, one pre-built PUBLISH per in-flight slot,
 * PUBACKs parsed by hand. mqtt.js spends more CPU per message than a fast broker does, so
 * with it the benchmark would measure the client; this one costs one write of a ready buffer
 * per message, and it is the same generator for every broker compared.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

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
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, d]) : d;
    // Resends from one read go out in one write.
    this.socket.cork();
    for (;;) {
      if (buf.length < 2) break;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < 5 && i < buf.length; i++) {
        len += (buf[i]! & 0x7f) * mul;
        mul *= 128;
        if ((buf[i]! & 0x80) === 0) break;
      }
      if (i >= buf.length || buf.length < i + 1 + len) break;
      const type = buf[0]! & 0xf0;
      const body = buf.subarray(i + 1, i + 1 + len);
      buf = buf.subarray(i + 1 + len);
      if (type === CONNACK) {
        if (body[1] !== 0) this.failed?.(new Error(`${this.id}: CONNACK return code ${body[1]}`));
        else this.connected?.();
      } else if (type === PUBACK) {
        const slot = ((body[0]! << 8) | body[1]!) - 1;
        this.outstanding--;
        this.onAck(performance.now() - this.sentAt[slot]!);
        if (this.running) this.send(slot);
      }
    }
    this.socket.uncork();
    this.pending = buf.length > 0 ? Buffer.from(buf) : Buffer.alloc(0);
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
