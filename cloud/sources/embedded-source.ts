import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { StreamLog } from '../../shared/stream-log.js';
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

  constructor(
    path: string,
    private readonly group: string,
    rebuildMs: number,
  ) {
    this.log = new StreamLog(path);
    this.committedAtStart = this.log.committed(group);
    const committedAt = this.log.receivedAtOf(this.committedAtStart);
    this.cursor = committedAt === undefined ? this.committedAtStart : this.log.offsetBefore(committedAt - rebuildMs);
  }

  async poll(max: number): Promise<SourcedRecord[]> {
    const entries = this.log.readAfter(this.cursor, max);
    if (entries.length > 0) this.cursor = entries.at(-1)!.offset;
    return entries.map((e) => ({
      ...decodeStreamRecord(e.value, { key: e.key, receivedAt: e.receivedAt }),
      offset: e.offset,
      rebuild: e.offset <= this.committedAtStart,
    }));
  }

  async commit(record: SourcedRecord): Promise<void> {
    this.log.commit(this.group, record.offset);
  }

  async close(): Promise<void> {
    this.log.close();
  }
}
