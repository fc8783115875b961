import { KinesisClient, PutRecordsCommand, type PutRecordsResultEntry } from '@aws-sdk/client-kinesis';
import { awsClientConfig, type AwsOptions } from '../../../shared/aws-client-config.js';
import { backoffDelay } from '../../../shared/backoff.js';
import { STREAMS } from '../../../shared/contract/topics.js';
import { ensureStream } from '../../../shared/kinesis-stream.js';
import type { Sink, SinkHealth, SinkRecord } from '../../sink.js';

export interface KinesisSinkOptions extends AwsOptions {
  streamName?: string;
  /** Shard count of the stream when this sink has to create it. */
  shards?: number;
  /** How long `write` keeps retrying one record before it rejects (the gateway then retries). */
  giveUpAfterMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** One PutRecords call is abandoned (and its records retried) after this long. */
  callTimeoutMs?: number;
  /** How long `start` waits for a stream it created to become ACTIVE. */
  createTimeoutMs?: number;
  /** Tests pass a client with fault-injecting middleware; otherwise one is built from the AWS options. */
  client?: KinesisClient;
}

/** PutRecords limits: 500 records and 5 MiB (data and partition keys) per call. */
export const MAX_RECORDS_PER_CALL = 500;
export const MAX_BYTES_PER_CALL = 5 * 1024 * 1024;

interface Pending {
  vehicle: string;
  data: Buffer;
  size: number;
  deadline: number;
  attempt: number;
  notBefore: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Kinesis as a sink: writes of one event-loop turn share PutRecords calls, and a record is
 * retried alone, with jittered backoff, when the call reports it failed.
 *
 * Order per vehicle: PutRecords does not order a failed record before a later one that
 * succeeded in the same call, and a later copy of that record cannot undo it. So a
 * vehicle never has more than one record in flight: its next record is sent only after
 * the previous one is in the stream, and a failed record is retried ahead of its successors.
 */
export class KinesisSink implements Sink {
  readonly name = 'kinesis';
  readonly streamName: string;
  private readonly client: KinesisClient;
  private readonly queues = new Map<string, Pending[]>();
  private readonly inFlight = new Set<string>();
  private pumpScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private retryAt = Infinity;
  private closed = false;
  private drained?: () => void;
  private lastError?: string;

  constructor(private readonly opts: KinesisSinkOptions) {
    this.streamName = opts.streamName ?? STREAMS.telemetry;
    this.client = opts.client ?? new KinesisClient(awsClientConfig(opts));
  }

  async start(): Promise<void> {
    await ensureStream(this.client, this.streamName, { shards: this.opts.shards ?? 2, timeoutMs: this.opts.createTimeoutMs ?? 120_000 });
  }

  write(record: SinkRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('kinesis sink is closed'));
    // A batch holds at most MAX_BATCH_READINGS (under 300 KB encoded): a record is always within Kinesis's 1 MiB.
    const { key: vehicle, value: data } = record;
    const size = data.length + Buffer.byteLength(vehicle);
    return new Promise((resolve, reject) => {
      const now = Date.now();
      const entry: Pending = {
        vehicle,
        data,
        size,
        deadline: now + (this.opts.giveUpAfterMs ?? 10_000),
        attempt: 0,
        notBefore: now,
        resolve,
        reject,
      };
      const queue = this.queues.get(vehicle);
      if (queue) queue.push(entry);
      else this.queues.set(vehicle, [entry]);
      this.schedulePump();
    });
  }

  health(): SinkHealth {
    return this.lastError ? { ok: false, detail: this.lastError } : { ok: true };
  }

  /** Lets every accepted write finish (each is bounded by its deadline), then lets go of the client. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.queues.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    clearTimeout(this.retryTimer);
    this.client.destroy();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends the head record of every vehicle that is neither in flight nor backing off. */
  private pump(): void {
    const now = Date.now();
    const ready: Pending[] = [];
    let nextRetry = Infinity;
    for (const [vehicle, queue] of this.queues) {
      if (this.inFlight.has(vehicle)) continue;
      const head = queue[0]!;
      if (head.notBefore <= now) ready.push(head);
      else nextRetry = Math.min(nextRetry, head.notBefore);
    }
    for (const call of chunkCalls(ready)) {
      for (const p of call) this.inFlight.add(p.vehicle);
      void this.send(call);
    }
    if (nextRetry < this.retryAt) {
      clearTimeout(this.retryTimer);
      this.retryAt = nextRetry;
      this.retryTimer = setTimeout(() => {
        this.retryAt = Infinity;
        this.pump();
      }, nextRetry - now);
    }
  }

  private async send(call: Pending[]): Promise<void> {
    let errors: (string | undefined)[];
    try {
      const out = await this.client.send(
        new PutRecordsCommand({ StreamName: this.streamName, Records: call.map((p) => ({ PartitionKey: p.vehicle, Data: p.data })) }),
        { abortSignal: AbortSignal.timeout(this.opts.callTimeoutMs ?? 5_000) },
      );
      errors = call.map((_, i) => recordError(out.Records?.[i]));
    } catch (err) {
      // The whole call failed (or timed out, maybe after storing some): every record is resent.
      const e = err as Error;
      errors = call.map(() => `${e.name}: ${e.message}`);
    }
    const now = Date.now();
    call.forEach((p, i) => {
      this.inFlight.delete(p.vehicle);
      const queue = this.queues.get(p.vehicle)!;
      const error = errors[i];
      if (error === undefined) {
        queue.shift();
        p.resolve();
      } else {
        this.lastError = error;
        const delay = backoffDelay(p.attempt++, this.opts.retryBaseMs ?? 100, this.opts.retryMaxMs ?? 2_000);
        if (now + delay <= p.deadline) {
          p.notBefore = now + delay;
        } else {
          // Records behind it would land ahead of it: they fail with it, and the gateway retries them in order.
          const failed = new Error(`Kinesis did not take the record after ${p.attempt} attempts: ${error}`);
          for (const q of queue.splice(0)) q.reject(failed);
        }
      }
      if (queue.length === 0) this.queues.delete(p.vehicle);
    });
    if (errors.every((e) => e === undefined)) this.lastError = undefined;
    if (this.queues.size === 0) this.drained?.();
    this.schedulePump();
  }
}

function recordError(entry: PutRecordsResultEntry | undefined): string | undefined {
  if (entry === undefined) return 'no result for the record';
  return entry.ErrorCode ? `${entry.ErrorCode}: ${entry.ErrorMessage ?? ''}` : undefined;
}

/** Splits records, in order, into PutRecords calls within the per-call limits. */
export function chunkCalls<T extends { size: number }>(records: T[]): T[][] {
  const calls: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const r of records) {
    if (current.length === MAX_RECORDS_PER_CALL || (current.length > 0 && bytes + r.size > MAX_BYTES_PER_CALL)) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += r.size;
  }
  if (current.length > 0) calls.push(current);
  return calls;
}
