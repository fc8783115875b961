import { StreamLog } from '../../../shared/stream-log.js';
import type { Sink, SinkHealth, SinkRecord } from '../../sink.js';

interface Pending {
  record: SinkRecord;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The embedded stream as a sink. Writes arriving in the same event-loop turn share one
 * transaction (group commit), and commits made while the WAL is being synced share the next
 * sync: the fsync runs on libuv's thread pool while the next turns' batches are decoded and
 * committed, and a write resolves (its PUBACK goes out) once a sync after its commit is done.
 */
export class EmbeddedSink implements Sink {
  readonly name = 'embedded';
  private log?: StreamLog;
  private queue: Pending[] = [];
  private scheduled = false;
  /** Committed, waiting for the next sync. */
  private unsynced: Pending[] = [];
  private syncing?: Promise<void>;
  private lastError?: string;

  constructor(private readonly path: string) {}

  async start(): Promise<void> {
    this.log = new StreamLog(this.path, 'sync');
  }

  write(record: SinkRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  health(): SinkHealth {
    return this.lastError ? { ok: false, detail: this.lastError } : { ok: true };
  }

  async close(): Promise<void> {
    this.flush();
    await this.syncing;
    this.log?.close();
  }

  private flush(): void {
    this.scheduled = false;
    const pending = this.queue;
    this.queue = [];
    if (pending.length === 0) return;
    try {
      this.log!.append(pending.map(({ record: { key, value, receivedAt } }) => ({ key, value, receivedAt })));
    } catch (err) {
      this.lastError = (err as Error).message;
      for (const p of pending) p.reject(err as Error);
      return;
    }
    this.unsynced.push(...pending);
    this.syncing ??= this.syncAll();
  }

  /** Syncs until no commit waits for one; commits made during a sync wait for the next. */
  private async syncAll(): Promise<void> {
    while (this.unsynced.length > 0) {
      const committed = this.unsynced;
      this.unsynced = [];
      try {
        await this.log!.sync();
        this.lastError = undefined;
        for (const p of committed) p.resolve();
      } catch (err) {
        // The gateway writes them again: a record both committed and rewritten is a duplicate, which consumers drop.
        this.lastError = `syncing the stream to disk: ${(err as Error).message}`;
        for (const p of committed) p.reject(err as Error);
      }
    }
    this.syncing = undefined;
  }
}
