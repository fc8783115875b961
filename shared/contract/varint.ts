import { ContractError } from './errors.js';

/**
 * LEB128 varints over plain numbers (not bit operators), so values up to 2^53 round-trip:
 * sequence numbers and millisecond timestamps exceed 32 bits.
 */
export class ByteWriter {
  private buf = Buffer.allocUnsafe(256);
  private len = 0;

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  uvarint(n: number): void {
    // The loop below never ends on Infinity and writes past its 8 bytes for anything over 2^56:
    // a caller that encodes an unvalidated number must fail here, not hang (found by fuzzing).
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`uvarint: ${n} is not an integer in [0, 2^53)`);
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.len++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.len++] = n;
  }

  svarint(n: number): void {
    this.uvarint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  append(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
}

export class ByteReader {
  private pos = 0;
  private list?: string;
  private item = 0;
  constructor(private readonly buf: Buffer) {}

  /**
   * Reads one element of a list from here on: `what` is then named as `list[item] what`. The
   * name is built only when an error is thrown, so a well-formed payload costs no strings.
   */
  within(list: string, item: number): void {
    this.list = list;
    this.item = item;
  }

  byte(what: string): number {
    if (this.pos >= this.buf.length) throw new ContractError(`payload ends inside ${this.name(what)}`);
    return this.buf[this.pos++]!;
  }

  uvarint(what: string): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte(what);
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw new ContractError(`${this.name(what)}: varint longer than 8 bytes`);
  }

  /** `what` as the current list element's (see within). */
  name(what: string): string {
    return this.list === undefined ? what : `${this.list}[${this.item}] ${what}`;
  }

  svarint(what: string): number {
    const z = this.uvarint(what);
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  /** The next `n` bytes as they are. */
  take(n: number, what: string): Buffer {
    if (n > this.remaining) throw new ContractError(`payload ends inside ${this.name(what)}: ${n} bytes announced, ${this.remaining} left`);
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
  }

  /** Everything not read yet. */
  rest(): Buffer {
    return this.take(this.remaining, 'the rest');
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }
}
