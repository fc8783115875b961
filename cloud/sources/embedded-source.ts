import { StreamLog, type StreamRecord } from '../../shared/stream-log.js';
import type { SourcedRecord, TelemetrySource } from './source.js';

/**
 * Reads the embedded stream. On start it seeks back `rebuildMs` of append time before its
 * committed position, as a Kafka consumer seeks by timestamp, so open windows are rebuilt
 * rather than lost across a restart.
 */
export class EmbeddedSource implements TelemetrySource {
  readonly name = 'embedded';
  private readonly log: StreamLog;
  private cursor: number;
  private readonly committedAtStart: number;

  constructor(path: string, private readonly group: string, rebuildMs: number) {
    this.log = new StreamLog(path);
    this.committedAtStart = this.log.committed(group);
    const committedAt = this.log.receivedAtOf(this.committedAtStart);
    this.cursor = committedAt === undefined ? this.committedAtStart : this.log.offsetBefore(committedAt - rebuildMs);
  }

  async poll(max: number): Promise<SourcedRecord[]> {
    const records = this.log.readAfter(this.cursor, max);
    if (records.length > 0) this.cursor = records.at(-1)!.offset;
    return records.map((r) => ({ ...r, rebuild: r.offset <= this.committedAtStart }));
  }

  async commit(record: StreamRecord): Promise<void> {
    this.log.commit(this.group, record.offset);
  }

  async close(): Promise<void> {
    this.log.close();
  }
}
