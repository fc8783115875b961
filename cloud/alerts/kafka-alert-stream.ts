import type { Consumer, Kafka, Producer } from 'kafkajs';
import { STREAMS } from '../../shared/contract/topics.js';
import { ensureTopic, kafkaClient, type TopicSpec } from '../../shared/kafka.js';
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

  /** Resolves when every in-sync replica has the events (acks = all). */
  async write(events: AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.producer === undefined) {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
    }
    const messages = events.map((e) => ({ key: alertEventVehicle(e), value: encodeAlertEvent(e) }));
    await this.producer.send({ topic: this.topic, acks: -1, messages });
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
