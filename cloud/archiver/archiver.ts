import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../shared/log.js';
import { createRegistry, startOpsServer } from '../../shared/ops-server.js';
import { sleep } from '../../shared/sleep.js';
import type { ArchiveStore } from '../archive/object-store.js';
import type { PositionedRecord, PositionedSource } from '../sources/source.js';
import type { ReceivedReading } from '../store.js';
import { cutoverKey } from './archive-keys.js';
import { LaneArchiver, type SegmentWritten } from './lane-archiver.js';
import type { PartitionBy } from './segment.js';

export interface ArchiverOptions {
  source: PositionedSource;
  store: ArchiveStore;
  /** The topic or stream read: names the archiver's bookkeeping in the archive. */
  streamName: string;
  /** Where segment files are written before they are uploaded. */
  stagingDir: string;
  /** A lane's segment is cut once this many stream bytes are staged in it. */
  flushBytes: number;
  /** ... or once its oldest staged record has waited this long. */
  flushAgeMs: number;
  /** Staged bytes across lanes: past it the biggest lane is cut early. */
  stagingMaxBytes: number;
  partitionBy: PartitionBy;
  writeFile(rows: ReceivedReading[], localPath: string): Promise<void>;
  pollIntervalMs: number;
  pollMaxRecords: number;
  opsHost: string;
  /** -1: no ops endpoint. */
  opsPort: number;
}

/** A one-shot run over a source that cannot tell how far behind it is (Kinesis) ends once nothing came for this long. */
const DRAIN_IDLE_MS = 5_000;
/** The longest wait between attempts while the archive or the source fails. */
const RETRY_MAX_MS = 5_000;

/**
 * `fleet archiver`: reads the telemetry stream and writes every reading once to Parquet
 * files in an archive (a directory or an S3 bucket), partitioned by hour. Each lane of the
 * stream is cut into segments whose boundaries the archive itself fixes (see
 * lane-archiver.ts), and the stream position is committed only after a segment's files and
 * head are written, so a crash or a second archiver on the same lane rewrites the same
 * objects rather than adding any.
 */
export class Archiver {
  readonly registry: Registry;
  readonly store: ArchiveStore;
  private readonly lanes = new Map<string, LaneArchiver>();
  private running = false;
  private loop?: Promise<void>;
  private readonly stopping = new AbortController();
  private failure?: { error: string; failures: number; since: number };
  private ops?: Server;
  private cutoverWritten = false;
  /** Polled and not yet staged: staged first in the next round after a failure. */
  private pending: PositionedRecord[] = [];
  private readonly metrics;
  /** Totals since start, for health and the backfill's progress. */
  readonly totals = { readings: 0, duplicates: 0, files: 0, bytes: 0, segments: 0, replayed: 0, skipped: 0 };

  constructor(
    private readonly opts: ArchiverOptions,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.store = opts.store;
    this.registry = registry ?? createRegistry('archiver');
    const r = [this.registry];
    const lanes = this.lanes;
    this.metrics = {
      readings: new Counter({
        name: 'fleet_archiver_readings_total',
        help: 'Readings written to the archive (a segment rewritten at the same cut counts again)',
        registers: r,
      }),
      duplicates: new Counter({
        name: 'fleet_archiver_duplicates_total',
        help: 'Repeated (vehicle, seq) readings in the stream dropped',
        registers: r,
      }),
      files: new Counter({ name: 'fleet_archiver_files_total', help: 'Parquet files written (rewrites included)', registers: r }),
      bytes: new Counter({ name: 'fleet_archiver_bytes_total', help: 'Bytes of Parquet written (rewrites included)', registers: r }),
      segments: new Counter({
        name: 'fleet_archiver_segments_total',
        help: 'Segments written: new, or replayed at a cut an earlier writer fixed (after a crash, or by another archiver)',
        labelNames: ['cut'] as const,
        registers: r,
      }),
      skipped: new Counter({
        name: 'fleet_archiver_records_skipped_total',
        help: 'Stream records read again that the archive already held (after a crash between head and commit)',
        registers: r,
      }),
      failures: new Counter({
        name: 'fleet_archiver_failures_total',
        help: 'Rounds of reading and archiving that failed (each retried)',
        registers: r,
      }),
      lag: new Gauge({
        name: 'fleet_archiver_lag_seconds',
        help: 'Seconds between now and the receive time of the last record committed, per lane',
        labelNames: ['lane'] as const,
        registers: r,
        collect(this: Gauge<'lane'>) {
          const now = Date.now();
          for (const lane of lanes.values())
            if (lane.committedReceivedAt !== undefined) this.set({ lane: lane.lane }, (now - lane.committedReceivedAt) / 1000);
        },
      }),
      behind: new Gauge({
        name: 'fleet_archiver_records_behind',
        help: 'Stream records not yet archived and committed, per lane, where the source can tell (Kafka, the embedded log)',
        labelNames: ['lane'] as const,
        registers: r,
        collect: async function (this: Gauge<'lane'>) {
          const behind = await opts.source.behind?.().catch(() => undefined);
          for (const [lane, n] of behind ?? []) this.set({ lane }, n);
        },
      }),
      staged: new Gauge({
        name: 'fleet_archiver_staged_bytes',
        help: 'Stream bytes read and held for segments not yet written',
        registers: r,
        collect(this: Gauge) {
          this.set([...lanes.values()].reduce((n, l) => n + l.stagedBytes, 0));
        },
      }),
    };
  }

  async start(): Promise<void> {
    this.clearStaging();
    if (this.opts.opsPort >= 0)
      this.ops = await startOpsServer(this.opts.opsHost, this.opts.opsPort, this.registry, () => this.health(), this.log);
    this.running = true;
    this.loop = this.run();
    this.log.info(
      {
        source: this.opts.source.name,
        archive: this.opts.store.location,
        stream: this.opts.streamName,
        partitionBy: this.opts.partitionBy,
      },
      'archiver started',
    );
  }

  health() {
    const f = this.failure;
    return {
      ok: this.running && !f,
      source: this.opts.source.name,
      archive: this.opts.store.location,
      ...(f ? { detail: f.error, failures: f.failures, since: f.since } : {}),
      ...(this.opts.source.health ? { sourceDetail: this.opts.source.health() } : {}),
      lanes: this.lanes.size,
      ...this.totals,
    };
  }

  /** Stops reading, writes what is staged, commits, and closes the source. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.loop;
    await this.flushAll().catch((err: Error) =>
      this.log.error({ err: err.message }, 'staged records not written on stop; read again on start'),
    );
    await this.opts.source.close();
    this.ops?.close();
    this.log.info(this.totals, 'archiver stopped');
  }

  /** Archives what the stream holds up to now, then stops as `stop` does: the end of a timed run (`fleet demo --duration`). */
  async finish(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.drain();
    await this.stop();
  }

  /**
   * Archives until the stream has nothing more for this reader, writing what is staged each
   * time it comes up empty: a one-shot run (`--backfill`, the benchmark). `progress` is told
   * after each round.
   */
  async drain(progress?: () => void): Promise<void> {
    this.clearStaging();
    let idleSince: number | undefined;
    for (;;) {
      const n = await this.round();
      progress?.();
      if (n > 0) {
        idleSince = undefined;
        continue;
      }
      await this.flushAll();
      progress?.();
      if (await this.caughtUp((idleSince ??= Date.now()))) return;
      await sleep(this.opts.pollIntervalMs, this.stopping.signal);
    }
  }

  /**
   * Every lane committed to its end, where the source tells (an empty poll alone may only
   * mean a Kafka consumer that has not joined its group yet); else nothing came for a while.
   */
  private async caughtUp(idleSince: number): Promise<boolean> {
    const behind = await this.opts.source.behind?.();
    if (behind === undefined) return Date.now() - idleSince >= DRAIN_IDLE_MS;
    return behind.size > 0 && [...behind.values()].every((n) => n <= 0);
  }

  /** Drops the Parquet files a killed run left in the staging directory: each segment writes its own again. */
  private clearStaging(): void {
    mkdirSync(this.opts.stagingDir, { recursive: true });
    for (const f of readdirSync(this.opts.stagingDir)) if (f.endsWith('.parquet')) rmSync(join(this.opts.stagingDir, f), { force: true });
  }

  /** After `drain`: lets go of the source. */
  close(): Promise<void> {
    return this.opts.source.close();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let n = 0;
      try {
        n = await this.round();
        if (this.failure) this.log.info({ failures: this.failure.failures }, 'archiver rounds succeed again');
        this.failure = undefined;
      } catch (err) {
        const e = err as Error;
        const failures = (this.failure?.failures ?? 0) + 1;
        this.failure = { error: e.message, failures, since: this.failure?.since ?? Date.now() };
        this.metrics.failures.inc();
        this.log.error({ err: e.message, failures }, 'archiver round failed, retrying');
        await sleep(Math.min(RETRY_MAX_MS, this.opts.pollIntervalMs * 2 ** failures), this.stopping.signal);
      }
      if (n < this.opts.pollMaxRecords) await sleep(this.opts.pollIntervalMs, this.stopping.signal);
    }
  }

  /**
   * One poll: stage what came, write the segments that are due. Returns how many records
   * came. Records polled are taken from the source, which does not hand them out again: a
   * round that fails keeps those not yet staged for the next, so no lane ever skips one.
   * While the staging is full and a flush fails, it polls nothing more.
   */
  private async round(): Promise<number> {
    if (this.pending.length === 0 && this.mayPoll()) this.pending = await this.opts.source.poll(this.opts.pollMaxRecords);
    const n = this.pending.length;
    const now = Date.now();
    while (this.pending.length > 0) {
      const lane = await this.accept(this.pending[0]!, now);
      this.pending.shift();
      if (lane.stagedBytes >= this.opts.flushBytes) await lane.flush(true, now);
    }
    await this.flushDue(now);
    for (const lane of this.lanes.values()) await lane.commitSkipped();
    return n;
  }

  /** Below the staging limit, or every staged lane waits for records up to another writer's cut. */
  private mayPoll(): boolean {
    const lanes = [...this.lanes.values()];
    return (
      lanes.reduce((n, l) => n + l.stagedBytes, 0) < this.opts.stagingMaxBytes || lanes.every((l) => l.stagedBytes === 0 || l.waitingForCut)
    );
  }

  /** Stages the record in its lane (or skips it as archived); throws only before staging it. */
  private async accept(r: PositionedRecord, now: number): Promise<LaneArchiver> {
    let lane = this.lanes.get(r.lane);
    if (!lane) this.lanes.set(r.lane, (lane = new LaneArchiver(r.lane, this.laneContext())));
    if (!(await lane.accept(r, now))) {
      this.totals.skipped++;
      this.metrics.skipped.inc();
    }
    return lane;
  }

  private async flushDue(now: number): Promise<void> {
    const { flushBytes, flushAgeMs, stagingMaxBytes } = this.opts;
    for (const lane of this.lanes.values()) {
      const due = lane.stagedBytes >= flushBytes || (lane.stagedSince !== undefined && now - lane.stagedSince >= flushAgeMs);
      await lane.flush(due, now);
    }
    // Over the total: the biggest lane that can be cut goes early; one waiting for another
    // writer's cut needs more records, not fewer.
    for (;;) {
      const total = [...this.lanes.values()].reduce((n, l) => n + l.stagedBytes, 0);
      const biggest = [...this.lanes.values()]
        .filter((l) => !l.waitingForCut && l.stagedBytes > 0)
        .sort((a, b) => b.stagedBytes - a.stagedBytes)[0];
      if (total < stagingMaxBytes || !biggest) return;
      await biggest.flush(true, now);
    }
  }

  private async flushAll(): Promise<void> {
    const now = Date.now();
    for (const lane of this.lanes.values()) {
      await lane.flush(true, now);
      await lane.commitSkipped();
    }
  }

  private laneContext() {
    return {
      store: this.opts.store,
      streamName: this.opts.streamName,
      stagingDir: this.opts.stagingDir,
      partitionBy: this.opts.partitionBy,
      writeFile: (rows: ReceivedReading[], path: string) => this.opts.writeFile(rows, path),
      commit: (r: PositionedRecord) => this.opts.source.commitLane(r),
      written: (s: SegmentWritten) => this.written(s),
      log: this.log,
    };
  }

  private async written(s: SegmentWritten): Promise<void> {
    const t = this.totals;
    t.readings += s.readings;
    t.duplicates += s.duplicates;
    t.files += s.files;
    t.bytes += s.bytes;
    t.segments++;
    if (s.adopted) t.replayed++;
    this.metrics.readings.inc(s.readings);
    this.metrics.duplicates.inc(s.duplicates);
    this.metrics.files.inc(s.files);
    this.metrics.bytes.inc(s.bytes);
    this.metrics.segments.inc({ cut: s.adopted ? 'replayed' : 'new' });
    if (!this.cutoverWritten) {
      // Where the stream archive begins, for a backfill from the operational store: written
      // once, by the first segment any archiver writes.
      const cutover = { receivedAt: s.firstReceivedAt, lane: s.lane };
      await this.opts.store.putIfAbsent(cutoverKey(this.opts.streamName), Buffer.from(JSON.stringify(cutover)));
      this.cutoverWritten = true;
    }
    this.log.debug(s, 'segment written');
  }
}
