import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export interface GuardLimits {
  /** A PUBLISH payload longer than this reaches aedes cut short to this many bytes; the rest is read and dropped. */
  maxPayloadBytes: number;
  /** Any other packet longer than this ends the connection. */
  maxPacketBytes: number;
  /** A connection whose first packet (CONNECT) is not complete by then is cut. */
  connectTimeoutMs: number;
}

/** Why the guard ended a connection: the metric label and the log line say the same. */
export type GuardViolation = 'packet_too_large' | 'malformed_packet' | 'connect_timeout';

/** A PUBLISH the guard cut short: which one on the connection, its topic, and the payload size the client sent. */
interface ShortenedPublish {
  index: number;
  topic: string;
  payloadBytes: number;
}

const PUBLISH = 3;

/**
 * Sits between a client's socket and aedes. aedes's parser would buffer a packet of up to
 * 256 MiB before any check of ours could see it, so one client could take the gateway's
 * memory; cutting the connection instead would make a QoS 1 client resend the same packet
 * after every reconnect, for ever. So an oversized PUBLISH is passed on cut short (its
 * first `maxPayloadBytes`) while the rest streams past, and the gateway acknowledges and
 * dead-letters it like any other bad payload (see `takeShortened`). Only other packets
 * over the limit, or a client that never sends CONNECT, end the connection. Only fixed
 * headers, and the topic of a long PUBLISH, are parsed; other bytes pass untouched.
 */
export class GuardedConnection extends Duplex {
  private state: 'type' | 'length' | 'topic-length' | 'body' | 'keep' | 'drop' = 'type';
  private header: number[] = [];
  private length = 0;
  private multiplier = 1;
  private left = 0;
  /** The bytes of a long PUBLISH's topic length, topic and packet id, as they pass. */
  private variableHeader: number[] = [];
  private variableHeaderBytes = 0;
  private payloadBytes = 0;
  private firstPacketDone = false;
  private readonly connectTimer: NodeJS.Timeout;
  private readonly shortened: ShortenedPublish[] = [];
  /** PUBLISH packets seen on the wire, and asked about through takeShortened. */
  private publishesSeen = 0;
  private publishesTaken = 0;

  constructor(
    /** The client's socket (a TLSSocket on the mqtts listener, where it carries the certificate). */
    readonly socket: Socket,
    private readonly limits: GuardLimits,
    private readonly onViolation: (reason: GuardViolation, detail: string) => void,
  ) {
    super({ allowHalfOpen: false });
    this.connectTimer = setTimeout(
      () => this.cut('connect_timeout', `no CONNECT within ${limits.connectTimeoutMs} ms`),
      limits.connectTimeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      let out: Buffer[];
      try {
        out = this.scan(chunk);
      } catch (err) {
        if (!(err instanceof Violation)) throw err;
        return this.cut(err.reason, err.message);
      }
      const data = out.length === 1 ? out[0]! : Buffer.concat(out);
      if (data.length > 0 && !this.push(data)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /**
   * Whether the next PUBLISH aedes asks to authorize is one this guard cut short: the payload
   * size the client sent, or undefined. Call it once for every PUBLISH, in the order they
   * arrive (aedes authorizes them in that order; a PUBLISH it refuses before that ends the
   * connection). Counting is what tells two QoS 0 publishes on one topic apart.
   */
  takeShortened(topic: string): number | undefined {
    const index = ++this.publishesTaken;
    while (this.shortened.length > 0 && this.shortened[0]!.index < index) this.shortened.shift();
    const next = this.shortened[0];
    if (next?.index !== index || next.topic !== topic) return undefined;
    this.shortened.shift();
    return next.payloadBytes;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback);
  }

  /**
   * What aedes writes while the stream is corked or the socket busy goes out in one socket
   * write: mqtt-packet writes a PUBACK in three pieces, and one write per piece cost the
   * gateway more than anything else it does per message.
   */
  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.socket.write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.connectTimer);
    this.socket.destroy();
    callback(err);
  }

  private cut(reason: GuardViolation, detail: string): void {
    if (this.socket.destroyed) return;
    this.onViolation(reason, detail);
    this.socket.destroy();
  }

  /** Follows packet boundaries through the chunk and returns what aedes gets of it; throws a Violation to end the connection. */
  private scan(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'type':
          this.header = [chunk[i++]!];
          this.length = 0;
          this.multiplier = 1;
          this.state = 'length';
          break;
        case 'length': {
          const byte = chunk[i++]!;
          this.header.push(byte);
          this.length += (byte & 0x7f) * this.multiplier;
          this.multiplier *= 128;
          if (byte & 0x80) {
            if (this.header.length > 4) throw new Violation('malformed_packet', 'malformed packet length');
            break;
          }
          // The first packet must be CONNECT (aedes closes the connection otherwise), so a long first PUBLISH is cut.
          const publish = this.header[0]! >> 4 === PUBLISH && this.firstPacketDone;
          if (publish) this.publishesSeen++;
          if (publish && this.length > this.limits.maxPayloadBytes) {
            this.state = 'topic-length';
            this.variableHeader = [];
            break;
          }
          if (this.length > this.limits.maxPacketBytes) {
            throw new Violation('packet_too_large', `packet of ${this.length} bytes exceeds the limit of ${this.limits.maxPacketBytes}`);
          }
          out.push(Buffer.from(this.header));
          this.enterBody(this.length);
          break;
        }
        case 'topic-length':
          this.variableHeader.push(chunk[i++]!);
          if (this.variableHeader.length === 2) out.push(...this.startLongPublish());
          break;
        case 'body':
        case 'keep': {
          const take = Math.min(this.left, chunk.length - i);
          const bytes = chunk.subarray(i, i + take);
          out.push(bytes);
          if (this.state === 'keep') this.noteVariableHeader(bytes);
          this.left -= take;
          i += take;
          if (this.left > 0) break;
          if (this.state === 'keep') this.enterDrop();
          else this.endPacket();
          break;
        }
        case 'drop': {
          const take = Math.min(this.left, chunk.length - i);
          this.left -= take;
          i += take;
          if (this.left === 0) this.endPacket();
          break;
        }
      }
    }
    return out;
  }

  /**
   * A PUBLISH longer than the payload limit, once its topic length is known: if its payload
   * is too long after all, aedes gets a PUBLISH with a new length and the payload's first
   * `maxPayloadBytes`; the rest will be dropped.
   */
  private startLongPublish(): Buffer[] {
    const [flags] = this.header as [number];
    const topicBytes = (this.variableHeader[0]! << 8) | this.variableHeader[1]!;
    const idBytes = (flags >> 1) & 3 ? 2 : 0;
    this.variableHeaderBytes = 2 + topicBytes + idBytes;
    const payload = this.length - this.variableHeaderBytes;
    const lengthBytes = Buffer.from(this.variableHeader);
    if (payload <= this.limits.maxPayloadBytes) {
      // Not oversize (or malformed, which aedes refuses): pass it on as it came.
      this.variableHeaderBytes = 0;
      this.enterBody(this.length - 2);
      return [Buffer.from(this.header), lengthBytes];
    }
    const kept = this.limits.maxPayloadBytes;
    this.payloadBytes = payload;
    this.state = 'keep';
    this.left = this.variableHeaderBytes - 2 + kept;
    return [Buffer.from([flags, ...remainingLength(this.variableHeaderBytes + kept)]), lengthBytes];
  }

  /** Collects the topic and packet id of a long PUBLISH as they pass, and records it once they are complete. */
  private noteVariableHeader(bytes: Buffer): void {
    const wanted = this.variableHeaderBytes - this.variableHeader.length;
    if (wanted <= 0) return;
    this.variableHeader.push(...bytes.subarray(0, wanted));
    if (this.variableHeader.length < this.variableHeaderBytes) return;
    const vh = Buffer.from(this.variableHeader);
    const topicBytes = vh.readUInt16BE(0);
    const topic = vh.toString('utf8', 2, 2 + topicBytes);
    // Recorded before aedes has the packet's last byte, so before it authorizes the publish.
    this.shortened.push({ index: this.publishesSeen, topic, payloadBytes: this.payloadBytes });
  }

  private enterBody(bytes: number): void {
    this.left = bytes;
    if (bytes === 0) this.endPacket();
    else this.state = 'body';
  }

  private enterDrop(): void {
    this.left = this.payloadBytes - this.limits.maxPayloadBytes;
    this.payloadBytes = 0;
    this.state = 'drop';
  }

  private endPacket(): void {
    this.state = 'type';
    if (!this.firstPacketDone) {
      this.firstPacketDone = true;
      clearTimeout(this.connectTimer);
    }
  }
}

class Violation extends Error {
  constructor(
    readonly reason: GuardViolation,
    message: string,
  ) {
    super(message);
  }
}

/** MQTT's variable-length encoding of a packet's remaining length. */
function remainingLength(n: number): number[] {
  const bytes: number[] = [];
  do {
    bytes.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return bytes;
}
