import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/**
 * Sits between a client's socket and aedes and cuts the connection as soon as an MQTT packet
 * header announces more than `maxPacketBytes`. aedes's parser would otherwise buffer a packet
 * of up to 256 MiB before any check of ours could see it, so one client could take the
 * gateway's memory. Only the fixed headers are parsed; packet bodies pass untouched.
 */
export class GuardedConnection extends Duplex {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;

  constructor(
    /** The client's socket (a TLSSocket on the mqtts listener, where it carries the certificate). */
    readonly socket: Socket,
    private readonly maxPacketBytes: number,
    private readonly onViolation: (detail: string) => void,
  ) {
    super({ allowHalfOpen: false });
    socket.on('data', (chunk: Buffer) => {
      const problem = this.scan(chunk);
      if (problem) {
        this.onViolation(problem);
        socket.destroy();
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.socket.write(chunk, encoding, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.destroy();
    callback(err);
  }

  /** Follows packet boundaries through the chunk; returns why the connection must end, if it must. */
  private scan(chunk: Buffer): string | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.state = 'type';
      } else if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        const byte = chunk[i++]!;
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        if (++this.lengthBytes > 4) return 'malformed packet length';
        if (byte & 0x80) continue;
        if (this.length > this.maxPacketBytes) return `packet of ${this.length} bytes exceeds the limit of ${this.maxPacketBytes}`;
        this.bodyLeft = this.length;
        this.state = this.length === 0 ? 'type' : 'body';
      }
    }
    return undefined;
  }
}
