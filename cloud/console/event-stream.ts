import type { ServerResponse } from 'node:http';
import type { Logger } from '../../shared/log.js';
import type { FleetStore } from '../store.js';
import type { LatestChanges } from './latest-changes.js';
import type { StatusUpdate } from './status-tracker.js';

export interface EventStreamOptions {
  pollMs: number;
  heartbeatMs: number;
}

/** A client that lets this much pile up unread is dropped rather than buffered without end. */
const MAX_BUFFERED_BYTES = 1 << 20;
const CHANGES_PER_QUERY = 500;

/**
 * `GET /api/events`: Server-Sent Events to every open page. The detector may write the
 * store from another process, so alert changes and new latest values are found by
 * polling the store rather than by being told; one poll serves all clients.
 */
export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private lastChangeId = 0;
  private timers: NodeJS.Timeout[] = [];
  private polling = false;

  constructor(
    private readonly store: FleetStore,
    private readonly latest: LatestChanges,
    private readonly log: Logger,
    private readonly opts: EventStreamOptions,
  ) {}

  async start(): Promise<void> {
    this.lastChangeId = await this.store.lastChangeId();
    this.timers = [
      setInterval(() => void this.tick(), this.opts.pollMs),
      // A comment line keeps proxies and idle timeouts from closing a quiet stream.
      setInterval(() => this.writeAll(': heartbeat\n\n'), this.opts.heartbeatMs),
    ];
  }

  get size(): number {
    return this.clients.size;
  }

  open(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // HEAD asks for the headers only: there is no stream to keep open.
    if (res.req.method === 'HEAD') return void res.end();
    res.write(`retry: 2000\n${frame('hello', { lastChangeId: this.lastChangeId, at: Date.now() })}`);
    this.clients.add(res);
    res.once('close', () => this.clients.delete(res));
  }

  status(update: StatusUpdate): void {
    this.writeAll(frame('status', update));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  /** One poll at a time: a slow store makes ticks wait rather than pile up. */
  private async tick(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      await this.poll();
    } finally {
      this.polling = false;
    }
  }

  private async poll(): Promise<void> {
    try {
      const changed = await this.nextChanges();
      if (this.clients.size === 0) return;
      for (const [alertId, change] of changed) {
        const alert = await this.store.getAlert(alertId);
        if (alert) this.writeAll(frame('alert', { ...alert, change }));
      }
      // One frame per tick for the whole fleet: a page applies it in one go.
      const values = await this.latest.next();
      if (values.length > 0) this.writeAll(frame('values', values));
    } catch (err) {
      // A locked or briefly unavailable store is retried on the next tick.
      this.log.warn({ err: (err as Error).message }, 'polling the store failed');
    }
  }

  /** Alert id → latest change kind since the last poll; the alert is sent once with its current state. */
  private async nextChanges(): Promise<Map<string, string>> {
    const changed = new Map<string, string>();
    for (;;) {
      const batch = await this.store.changesAfter(this.lastChangeId, CHANGES_PER_QUERY);
      for (const c of batch) {
        changed.delete(c.alertId);
        changed.set(c.alertId, c.kind);
      }
      if (batch.length > 0) this.lastChangeId = batch.at(-1)!.id;
      if (batch.length < CHANGES_PER_QUERY) return changed;
    }
  }

  private writeAll(text: string): void {
    for (const res of this.clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.log.warn('dropping an event stream client that stopped reading');
        this.clients.delete(res);
        res.destroy();
      } else {
        res.write(text);
      }
    }
  }
}

function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
