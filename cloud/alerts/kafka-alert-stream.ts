import type { Consumer, Kafka, Producer } from 'kafkajs';
import { parseAlert } from '../../shared/contract/alert.js';
import { ContractError } from '../../shared/contract/errors.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { ensureTopic, kafkaClient } from '../../shared/kafka.js';
import type { Logger } from '../../shared/log.js';
import type { AlertEvent } from '../../shared/rules/engine.js';

export interface KafkaAlertStreamOptions {
  brokers: string[];
  topic?: string;
  partitions?: number;
  clientId: string;
}

/**
 * `fleet.alerts` on Kafka, keyed by vehicle: the detector writes every alert event, the
 * dispatchers consume them. A replayed event carries the same alert id, so consumers that
 * record deliveries by id never act on it twice.
 */
export class KafkaAlertStream {
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
    await ensureTopic(this.kafka, this.topic, this.opts.partitions ?? 6, this.log);
  }

  /** Resolves when every replica has the events (acks = all). */
  async write(events: AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    if (this.producer === undefined) {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
    }
    const messages = events.map((e) => ({ key: e.kind === 'cleared' ? e.vehicle : e.alert.vehicle, value: JSON.stringify(e) }));
    await this.producer.send({ topic: this.topic, acks: -1, messages });
  }

  /**
   * Hands each batch of events to `handle` in order per vehicle; the position is committed
   * only after `handle` resolved, so a crash redelivers rather than skips.
   */
  async consume(groupId: string, handle: (events: AlertEvent[]) => Promise<void>): Promise<void> {
    this.consumer = this.kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 });
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
      const e = JSON.parse(String(value)) as AlertEvent;
      if (e.kind === 'raised' || e.kind === 'promoted') return [{ kind: e.kind, alert: parseAlert(JSON.stringify(e.alert)) }];
      if (e.kind === 'cleared' && typeof e.alertId === 'string' && typeof e.at === 'number') return [e];
      throw new ContractError(`unknown alert event kind ${JSON.stringify((e as { kind?: unknown }).kind)}`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'alert event refused');
      return [];
    }
  }
}
