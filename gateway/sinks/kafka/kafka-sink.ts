import { CompressionTypes, Partitioners, type Kafka, type Message, type Producer } from 'kafkajs';
import { STREAMS } from '../../../shared/contract/topics.js';
import { PRODUCER_SETTINGS, ensureTopic, kafkaClient } from '../../../shared/kafka.js';
import type { Logger } from '../../../shared/log.js';
import type { Sink, SinkHealth, SinkRecord } from '../../sink.js';

export interface KafkaSinkOptions {
  brokers: string[];
  topic?: string;
  /** Used only when the sink creates the topic. */
  partitions?: number;
  /** Used only when the sink creates the topic (see shared/kafka.ts TopicSpec). */
  replicationFactor?: number;
  minInsyncReplicas?: number;
  clientId?: string;
  compression?: 'none' | 'gzip';
}

interface Pending {
  message: Message;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Bounds one send: a write must fail within seconds while the cluster is away, so that the
 * gateway's own retry loop (which holds the PUBACK) takes over instead of a hidden one.
 */
const REQUEST_TIMEOUT_MS = 10_000;
const RETRY = { retries: 4, initialRetryTime: 200, maxRetryTime: 1_500 };

/**
 * A record is compact varints already: gzip's own header and trailer make a lone small one
 * larger (a 10-reading batch of about 110 bytes gzips to about 120). Several records share
 * keys and structure, so a request of several, or a record this long, is compressed.
 */
const GZIP_FROM_BYTES = 256;

/**
 * Telemetry to a Kafka topic, keyed by vehicle so a vehicle's batches stay in one partition
 * in order. A write resolves once every in-sync replica has it (acks=all), and the broker
 * refuses it while fewer than the topic's min.insync.replicas are in sync. Writes arriving
 * in the same event-loop turn share one produce request; one request is in flight at a time.
 */
export class KafkaSink implements Sink {
  readonly name = 'kafka';
  private readonly kafka: Kafka;
  private readonly topic: string;
  private producer?: Promise<Producer>;
  private queue: Pending[] = [];
  private scheduled = false;
  private sending?: Promise<void>;
  private lastError?: string;

  constructor(
    private readonly opts: KafkaSinkOptions,
    private readonly log: Logger,
  ) {
    this.topic = opts.topic ?? STREAMS.telemetry;
    this.kafka = kafkaClient(opts.brokers, opts.clientId ?? 'fleet-gateway', log, { requestTimeout: REQUEST_TIMEOUT_MS, retry: RETRY });
  }

  async start(): Promise<void> {
    // Adding partitions to an existing topic would move vehicles: an operator's decision.
    const { replicationFactor, minInsyncReplicas } = this.opts;
    const partitions = await ensureTopic(
      this.kafka,
      this.topic,
      { partitions: this.opts.partitions ?? 6, replicationFactor, minInsyncReplicas },
      this.log,
    );
    this.log.info({ topic: this.topic, partitions }, 'kafka sink ready');
    await this.connected();
  }

  write(record: SinkRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      // The record's own timestamp is the receive time too, so a consumer seeking by time seeks by it.
      const message = { key: record.key, value: record.value, timestamp: String(record.receivedAt) };
      this.queue.push({ message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  health(): SinkHealth {
    return this.lastError ? { ok: false, detail: this.lastError } : { ok: true };
  }

  async close(): Promise<void> {
    while (this.sending || this.queue.length > 0) await (this.sending ?? this.flush());
    await this.discardProducer();
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.sending || this.queue.length === 0) return;
    const pending = this.queue;
    this.queue = [];
    this.sending = this.send(pending);
    await this.sending;
    this.sending = undefined;
    // Writes that queued behind this request go out now, as one.
    if (this.queue.length > 0) void this.flush();
  }

  private async send(pending: Pending[]): Promise<void> {
    try {
      const producer = await this.connected();
      const messages = pending.map((p) => p.message);
      await producer.send({
        topic: this.topic,
        acks: -1,
        timeout: REQUEST_TIMEOUT_MS,
        compression: this.compressionFor(messages),
        messages,
      });
      if (this.lastError) this.log.info({ topic: this.topic }, 'kafka sink recovered');
      this.lastError = undefined;
      for (const p of pending) p.resolve();
    } catch (err) {
      this.lastError = (err as Error).message;
      for (const p of pending) p.reject(err as Error);
      await this.discardProducer();
    }
  }

  /** gzip when configured and when it makes the request smaller (see GZIP_FROM_BYTES). */
  private compressionFor(messages: Message[]): CompressionTypes {
    if (this.opts.compression !== 'gzip') return CompressionTypes.None;
    const helps = messages.length > 1 || (messages[0]!.value as Buffer).length >= GZIP_FROM_BYTES;
    return helps ? CompressionTypes.GZIP : CompressionTypes.None;
  }

  private connected(): Promise<Producer> {
    this.producer ??= (async () => {
      const producer = this.kafka.producer({
        // A failed send is retried whole by the gateway, never partly by kafkajs.
        ...PRODUCER_SETTINGS,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      return producer;
    })();
    return this.producer;
  }

  /**
   * After a failed send the broker may still have written it, and the gateway sends it again
   * whole (consumers drop the repeat by seq). The next send starts from a fresh producer,
   * with new connections and the cluster's metadata read again, not from one that failed.
   */
  private async discardProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer
      ?.then(
        (p) => p.disconnect(),
        () => undefined,
      )
      .catch(() => undefined);
  }
}
