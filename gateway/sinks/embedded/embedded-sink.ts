import { StreamLog } from '../../../shared/stream-log.js';
import type { Sink, SinkHealth, SinkRecord } from '../../sink.js';

interface Pending {
  record: SinkRecord;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The embedded stream as a sink. Writes arriving in the same event-loop turn share one
 * transaction and one fsync (group commit), so many agents cost one disk flush.
 */
export class EmbeddedSink implements Sink {
  readonly name = 'embedded';
  private log?: StreamLog;
  private queue: Pending[] = [];
  private scheduled = false;
  private lastError?: string;

  constructor(private readonly path: string) {}

  async start(): Promise<void> {
    this.log = new StreamLog(this.path);
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
    this.log?.close();
  }

  private flush(): void {
    this.scheduled = false;
    const pending = this.queue;
    this.queue = [];
    if (pending.length === 0) return;
    try {
      this.log!.append(pending.map(({ record: { key, value, receivedAt } }) => ({ key, value, receivedAt })));
      this.lastError = undefined;
      for (const p of pending) p.resolve();
    } catch (err) {
      this.lastError = (err as Error).message;
      for (const p of pending) p.reject(err as Error);
    }
  }
}
