import { IoTDataPlaneClient, PublishCommand, UpdateThingShadowCommand } from '@aws-sdk/client-iot-data-plane';
import { awsClientConfig, type AwsOptions } from '../../../shared/aws-client-config.js';
import type { Batch } from '../../../shared/contract/batch.js';
import { encodeBatch } from '../../../shared/contract/codec.js';
import type { GpsFix, Reading, SensorId } from '../../../shared/contract/reading.js';
import { topics } from '../../../shared/contract/topics.js';
import type { Sink, SinkHealth, SinkRecord } from '../../sink.js';

/** IoT Core refuses a message larger than 128 KB. */
export const MAX_PUBLISH_BYTES = 128 * 1024;

export interface IotCoreSinkOptions extends AwsOptions {
  /** A vehicle's shadow is updated at most once per this interval; the latest state wins. */
  shadowIntervalMs?: number;
}

/** The shadow's reported state: the newest value of each sensor, the position for gps. */
export type ReportedState = { ts?: number; position?: { lat: number; lon: number; heading: number; fix: GpsFix } } & Partial<
  Record<Exclude<SensorId, 'gps'>, number>
>;

interface ShadowState {
  reported: ReportedState;
  lastSeq: number;
  dirty: boolean;
  lastSentAt: number;
  timer?: NodeJS.Timeout;
  sending?: Promise<void>;
}

/**
 * AWS IoT Core as a sink: each batch is published to the vehicle's telemetry topic, as the
 * truck would have published it, so IoT rules route it on (to Kinesis, for one); and each
 * vehicle's shadow carries its latest state for dashboards and fleet tools. The shadow is a
 * view, not the record: a write resolves when the publish is accepted, and a failed shadow
 * update is only retried at the next interval.
 */
export class IotCoreSink implements Sink {
  readonly name = 'iot-core';
  private readonly client: IoTDataPlaneClient;
  private readonly intervalMs: number;
  private readonly shadows = new Map<string, ShadowState>();
  private publishError?: string;
  private shadowError?: string;
  private closed = false;

  constructor(opts: IotCoreSinkOptions) {
    this.client = new IoTDataPlaneClient(awsClientConfig(opts));
    this.intervalMs = opts.shadowIntervalMs ?? 5_000;
  }

  async start(): Promise<void> {}

  /** IoT Core is given the telemetry payload as the truck sent it, not the stream record: its rules route that on. */
  async write({ batch }: SinkRecord): Promise<void> {
    try {
      // In order, so a rule forwarding the parts keeps the vehicle's seq order.
      for (const payload of encodeParts(batch)) {
        await this.client.send(new PublishCommand({ topic: topics.telemetry(batch.vehicle), qos: 1, payload }));
      }
      this.publishError = undefined;
    } catch (err) {
      this.publishError = (err as Error).message;
      throw err;
    }
    this.updateShadow(batch);
  }

  health(): SinkHealth {
    if (this.publishError) return { ok: false, detail: `publish: ${this.publishError}` };
    // A lagging shadow loses no telemetry: reported, not unhealthy.
    return this.shadowError ? { ok: true, detail: `shadow: ${this.shadowError}` } : { ok: true };
  }

  /** Sends every pending shadow now, so a stopping gateway still leaves each vehicle's last state. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.shadows.values()) clearTimeout(s.timer);
    await Promise.all(
      [...this.shadows].map(async ([vehicle, s]) => {
        await s.sending;
        if (s.dirty) await this.sendShadow(vehicle, s);
      }),
    );
    this.client.destroy();
  }

  private updateShadow(batch: Batch): void {
    let s = this.shadows.get(batch.vehicle);
    if (!s) {
      s = { reported: {}, lastSeq: 0, dirty: false, lastSentAt: -Infinity };
      this.shadows.set(batch.vehicle, s);
    }
    for (const r of batch.readings) {
      // A resent batch must not roll the shadow back.
      if (r.seq <= s.lastSeq) continue;
      s.lastSeq = r.seq;
      applyReading(s.reported, r);
      s.dirty = true;
    }
    if (s.dirty) this.scheduleShadow(batch.vehicle, s);
  }

  private scheduleShadow(vehicle: string, s: ShadowState): void {
    if (s.timer || s.sending || this.closed) return;
    const delay = Math.max(0, s.lastSentAt + this.intervalMs - Date.now());
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.sending = this.sendShadow(vehicle, s).finally(() => {
        s.sending = undefined;
        // State that came in while the update was on its way goes out one interval later.
        if (s.dirty) this.scheduleShadow(vehicle, s);
      });
    }, delay);
  }

  private async sendShadow(vehicle: string, s: ShadowState): Promise<void> {
    s.dirty = false;
    s.lastSentAt = Date.now();
    const payload = Buffer.from(JSON.stringify({ state: { reported: s.reported } }));
    try {
      await this.client.send(new UpdateThingShadowCommand({ thingName: vehicle, payload }));
      this.shadowError = undefined;
    } catch (err) {
      s.dirty = true;
      this.shadowError = `${vehicle}: ${(err as Error).message}`;
    }
  }
}

/** A backlog batch too large for one message goes as consecutive smaller batches, each valid on its own. */
export function encodeParts(batch: Batch): Buffer[] {
  const payload = encodeBatch(batch);
  if (payload.length <= MAX_PUBLISH_BYTES || batch.readings.length === 1) return [payload];
  const half = Math.ceil(batch.readings.length / 2);
  return [
    ...encodeParts({ ...batch, readings: batch.readings.slice(0, half) }),
    ...encodeParts({ ...batch, readings: batch.readings.slice(half) }),
  ];
}

function applyReading(state: ReportedState, r: Reading): void {
  state.ts = Math.max(state.ts ?? 0, r.ts);
  if (r.sensor === 'gps') {
    if (r.position) state.position = { ...r.position };
  } else {
    state[r.sensor] = r.value;
  }
}
