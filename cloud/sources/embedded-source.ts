import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { StreamLog } from '../../shared/stream-log.js';
import type { PositionedRecord, PositionedSource, SourcedRecord } from './source.js';

/**
 * Reads the embedded stream. On start it seeks back `rebuildMs` of append time before its
 * committed position, as a Kafka consumer seeks by timestamp, so open windows are rebuilt
 * rather than lost across a restart. A consumer name never committed starts at the log's
 * first record.
 */
export class EmbeddedSource implements PositionedSource {
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

  async poll(max: number): Promise<PositionedRecord[]> {
    const entries = this.log.readAfter(this.cursor, max);
    if (entries.length > 0) this.cursor = entries.at(-1)!.offset;
    return entries.map((e) => ({
      ...decodeStreamRecord(e.value, { key: e.key, receivedAt: e.receivedAt }),
      offset: e.offset,
      rebuild: e.offset <= this.committedAtStart,
      lane: 'log',
      position: String(e.offset),
      size: e.value.length,
    }));
  }

  async commit(record: SourcedRecord): Promise<void> {
    this.log.commit(this.group, record.offset);
  }

  /** The log is one lane. */
  commitLane(record: PositionedRecord): Promise<void> {
    return this.commit(record);
  }

  behind(): Promise<Map<string, number>> {
    return Promise.resolve(new Map([['log', this.log.lastOffset() - this.log.committed(this.group)]]));
  }

  async close(): Promise<void> {
    this.log.close();
  }
}
