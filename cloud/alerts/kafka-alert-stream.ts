import type { Consumer, Kafka, Producer } from 'kafkajs';
import { STREAMS } from '../../shared/contract/topics.js';
import { backoffDelay } from '../../shared/backoff.js';
import { PRODUCER_SETTINGS, ensureTopic, kafkaClient, type TopicSpec } from '../../shared/kafka.js';
import type { Logger } from '../../shared/log.js';
import type { AlertEvent } from '../../shared/rules/engine.js';
import { alertEventVehicle, decodeAlertEvent, encodeAlertEvent } from './alert-events.js';
import type { AlertStream } from './alert-stream.js';

export interface KafkaAlertStreamOptions extends Partial<TopicSpec> {
  brokers: string[];
  topic?: string;
  clientId: string;
  /** The consumer group of `consume`: dispatchers sharing it share the partitions. */
  groupId?: string;
}

/** Sends of one write before it rejects: with the backoff, longer than a broker's failover (about 10 s). */
const WRITE_ATTEMPTS = 8;

/** `fleet.alerts` on Kafka: written with acks=all, consumed by a consumer group. */
export class KafkaAlertStream implements AlertStream {
  readonly name = 'kafka';
  private readonly kafka: Kafka;
  readonly topic: string;
  private producer?: Producer;
  private consumer?: Consumer;

  constructor(
    private readonly opts: KafkaAlertStreamOptions,
    private readonly log: Logger,
  ) {
    this.topic = opts.topic ?? STREAMS.alerts;
    this.kafka = kafkaClient(opts.brokers, opts.clientId, log);
  }

  async start(): Promise<void> {
    const { partitions = 6, replicationFactor, minInsyncReplicas } = this.opts;
    await ensureTopic(this.kafka, this.topic, { partitions, replicationFactor, minInsyncReplicas }, this.log);
  }

  /**
   * Resolves when every in-sync replica has the events (acks = all). A failed send is sent
   * again whole, with a fresh producer (see PRODUCER_SETTINGS), a few times before it rejects.
   */
  async write(events: AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    const messages = events.map((e) => ({ key: alertEventVehicle(e), value: encodeAlertEvent(e) }));
    for (let attempt = 0; ; attempt++) {
      try {
        if (this.producer === undefined) {
          this.producer = this.kafka.producer(PRODUCER_SETTINGS);
          await this.producer.connect();
        }
        await this.producer.send({ topic: this.topic, acks: -1, messages });
        return;
      } catch (err) {
        const producer = this.producer;
        this.producer = undefined;
        await producer?.disconnect().catch(() => undefined);
        if (attempt + 1 >= WRITE_ATTEMPTS) throw err;
        this.log.warn({ topic: this.topic, err: (err as Error).message, attempt }, 'alert events not written, retrying');
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, 200, 2_000)));
      }
    }
  }

  async consume(handle: (events: AlertEvent[]) => Promise<void>): Promise<void> {
    this.consumer = this.kafka.consumer({ groupId: this.opts.groupId ?? 'dispatcher', sessionTimeout: 10_000, heartbeatInterval: 1000 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const events = batch.messages.flatMap((m) => this.decode(m.value));
        await handle(events);
        payload.resolveOffset(batch.lastOffset());
        await payload.commitOffsetsIfNecessary({
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }] }],
        });
      },
    });
  }

  async close(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
  }

  private decode(value: Buffer | null): AlertEvent[] {
    try {
      return [decodeAlertEvent(value ?? '')];
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'alert event refused');
      return [];
    }
  }
}
