import { encodeBatch, type EncodeOptions } from '../shared/contract/codec.js';
import { topics } from '../shared/contract/topics.js';
import type { Logger } from '../shared/log.js';
import type { ReadingBuffer } from './buffer.js';
import type { AgentLink } from './link.js';
import { RateLimiter } from '../shared/rate-limiter.js';

export interface PublisherOptions {
  vehicle: string;
  batchMaxReadings: number;
  /** How long to wait for a batch to fill before sending a partial one. */
  lingerMs: number;
  maxInflight: number;
  encoding: EncodeOptions;
  /** While true, readings still waiting for a clock sync stay in the buffer (and so do all after them). */
  holdUnsynced: () => boolean;
  /** Publishes per second at most (AWS IoT Core allows 100 per connection); 0 for no limit. */
  maxPublishesPerSecond?: number;
  /** Runs a buffer write, undefined when the disk refused it (the agent reports and retries); without it a refusal throws. */
  bufferWrite?: <T>(write: () => T) => T | undefined;
}

interface InFlight {
  first: number;
  last: number;
  count: number;
}

/** A batch that was in flight when the link was lost, and how many times in a row that happened to it alone. */
interface Suspect {
  first: number;
  losses: number;
}

/**
 * Times a batch may be the only one in flight when the link is lost before it is set aside.
 * A broker that cuts the connection over a packet (Mosquitto's max_packet_size, for one)
 * would otherwise have it resent after every reconnect, for ever, and nothing behind it sent.
 */
export const MAX_LOSSES_PER_BATCH = 5;

/** The gateway's notice on `fleet/v1/{vehicle}/rejected` (docs/CONTRACT.md). */
interface RejectionNotice {
  reason: string;
  detail: string;
  topic: string;
}

/**
 * Moves readings from the buffer to the gateway in seq order, several batches in flight,
 * and deletes a batch only when its PUBACK arrives. Unacknowledged publishes stay in the
 * MQTT session and are resent by it after a reconnect; after a restart the buffer itself
 * is the list of what to send.
 *
 * After the link is lost with batches in flight, one batch at a time is sent until one is
 * acknowledged, so a loss can be put down to the batch that was in flight. A batch lost with
 * MAX_LOSSES_PER_BATCH times in a row is set aside: it stays in the buffer (nothing is deleted
 * without a PUBACK) but is not sent again until the agent restarts, and what comes after it
 * goes on. The gateway's rejection notices are logged and counted.
 */
export class Publisher {
  private inflight: InFlight[] = [];
  private sentUpTo = 0;
  private lingerTimer?: NodeJS.Timeout;
  private pumping = false;
  private readonly limiter?: RateLimiter;
  private rateTimer?: NodeJS.Timeout;
  private suspect?: Suspect;
  /** Set by stop(): PUBACKs still delete their ranges, but nothing more is sent and no timer is armed. */
  private stopped = false;
  private readonly setAside = { batches: 0, readings: 0 };
  onAck?: (readings: number, batches: number) => void;
  onSetAside?: (readings: number) => void;
  onRejection?: (reason: string) => void;

  constructor(
    private readonly opts: PublisherOptions,
    private readonly buffer: ReadingBuffer,
    private readonly link: AgentLink,
    private readonly log: Logger,
  ) {
    const rate = opts.maxPublishesPerSecond ?? 0;
    // No burst: publishes evenly spaced keep every one-second window within the limit.
    if (rate > 0) this.limiter = new RateLimiter(rate, 1);
    link.on('up', () => this.pump());
    link.on('down', () => this.forgetInFlight());
    link.on('rejected', (payload) => this.noteRejection(payload));
  }

  /** Called after each commit; sends at once when a full batch waits, else after the linger. */
  notify(): void {
    if (this.stopped) return;
    if (this.buffer.stats().readings - this.pendingInFlight() >= this.opts.batchMaxReadings) this.pump();
    else this.lingerTimer ??= setTimeout(() => this.pump(), this.opts.lingerMs);
  }

  inflightCount(): number {
    return this.inflight.length;
  }

  /** Batches (and their readings) set aside since start; they are still in the buffer. */
  setAsideCount(): { batches: number; readings: number } {
    return { ...this.setAside };
  }

  /** Sends nothing more: what is unacknowledged stays in the buffer for the next start. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.rateTimer);
    this.lingerTimer = undefined;
    this.rateTimer = undefined;
  }

  /**
   * After a disconnect the buffer, not the in-flight list, says what is left to send: the
   * MQTT session resends what it can, its PUBACKs still delete their ranges, and whatever
   * is still buffered after the reconnect is sent again from the oldest. A publish whose
   * session entry was lost (the broker restarted) is therefore never stranded.
   */
  private forgetInFlight(): void {
    if (this.inflight.length === 0) return;
    this.sentUpTo = Math.min(this.sentUpTo, ...this.inflight.map((b) => b.first - 1));
    this.noteLoss(this.inflight);
    this.inflight = [];
  }

  /** The link was lost with these batches unacknowledged: which one to suspect, and whether to set it aside. */
  private noteLoss(lost: InFlight[]): void {
    const oldest = lost.reduce((a, b) => (b.first < a.first ? b : a));
    // With several in flight the loss says nothing about which: send one at a time from now on.
    if (lost.length > 1) {
      this.suspect = { first: oldest.first, losses: 0 };
      return;
    }
    const losses = this.suspect?.first === oldest.first ? this.suspect.losses + 1 : 1;
    this.suspect = { first: oldest.first, losses };
    if (losses < MAX_LOSSES_PER_BATCH) return;
    this.suspect = undefined;
    this.sentUpTo = Math.max(this.sentUpTo, oldest.last);
    this.setAside.batches++;
    this.setAside.readings += oldest.count;
    this.log.error(
      { first: oldest.first, last: oldest.last, readings: oldest.count, losses },
      'batch set aside: the link was lost each time it was sent; it stays in the buffer, unsent until the agent restarts',
    );
    this.onSetAside?.(oldest.count);
  }

  /** The gateway acknowledged a payload it could not accept: nothing to resend, but the reason is worth knowing. */
  private noteRejection(payload: Buffer): void {
    let notice: RejectionNotice;
    try {
      notice = JSON.parse(payload.toString()) as RejectionNotice;
      if (typeof notice?.reason !== 'string') throw new Error('no reason');
    } catch {
      this.log.warn({ bytes: payload.length }, 'unreadable rejection notice from the gateway');
      return;
    }
    this.log.warn({ reason: notice.reason, detail: notice.detail, topic: notice.topic }, 'the gateway refused a payload');
    this.onRejection?.(notice.reason);
  }

  private pendingInFlight(): number {
    return this.inflight.reduce((n, b) => n + b.count, 0);
  }

  private pump(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.pumping || this.stopped) return;
    this.pumping = true;
    try {
      const window = this.suspect ? 1 : this.opts.maxInflight;
      while (this.link.connected && this.inflight.length < window) {
        const readings = this.buffer.after(this.sentUpTo, this.opts.batchMaxReadings, this.opts.holdUnsynced());
        if (readings.length === 0) return;
        const wait = this.limiter?.delay() ?? 0;
        if (wait > 0) {
          this.rateTimer ??= setTimeout(() => {
            this.rateTimer = undefined;
            this.pump();
          }, wait);
          return;
        }
        this.limiter?.reserve();
        const batch = { vehicle: this.opts.vehicle, headTs: this.buffer.newestTs() ?? readings.at(-1)!.ts, readings };
        const entry = { first: readings[0]!.seq, last: readings.at(-1)!.seq, count: readings.length };
        this.inflight.push(entry);
        this.sentUpTo = entry.last;
        this.buffer.protectedUpTo = entry.last;
        this.link.publish(topics.telemetry(this.opts.vehicle), encodeBatch(batch, this.opts.encoding), (err) => this.settle(entry, err));
      }
    } finally {
      this.pumping = false;
    }
  }

  private settle(entry: InFlight, err?: Error): void {
    const tracked = this.inflight.includes(entry);
    this.inflight = this.inflight.filter((b) => b !== entry);
    if (err) {
      if (!tracked) return; // forgotten at a disconnect: the buffer resends it anyway
      // The session dropped this publish: send its readings again from the buffer.
      this.log.warn({ err: err.message, first: entry.first, last: entry.last }, 'batch not acknowledged, will resend');
      this.sentUpTo = Math.min(this.sentUpTo, entry.first - 1);
    } else {
      if (tracked) this.suspect = undefined;
      // Should the disk refuse the delete, the buffer deletes the range with its next write; nothing is resent meanwhile.
      const acknowledge = () => this.buffer.acknowledge(entry.first, entry.last);
      if (this.opts.bufferWrite) this.opts.bufferWrite(acknowledge);
      else acknowledge();
      this.onAck?.(entry.count, 1);
    }
    this.pump();
  }
}
