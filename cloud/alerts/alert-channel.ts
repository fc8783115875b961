import type { Alert } from '../../shared/contract/alert.js';
import type { AlertEvent } from '../../shared/rules/engine.js';

/**
 * Somewhere an alert is told: the driver's cab, an SNS topic, a webhook. The dispatcher
 * records each (alert, channel) delivery, so a channel sees an alert id at most once,
 * across restarts too, unless its receiver acknowledges what it gets (the cab): then the
 * alert is sent again until acknowledged or no longer fresh, and the receiver drops repeats.
 */
export interface AlertChannel {
  /** Unique per dispatcher; the delivery ledger's key. */
  readonly name: string;
  /**
   * The driver's cab: told only about the present, and only of alerts meant for the driver
   * (sensor-health alerts are the fleet team's); other channels are told everything.
   */
  readonly cab: boolean;
  /**
   * True when the receiving end drops a repeat of the same alert id (the agent does;
   * a webhook gets an Idempotency-Key; an SNS FIFO topic a deduplication id). Only such
   * a channel is retried after a crash left a delivery's outcome unknown.
   */
  readonly idempotent: boolean;
  /**
   * True when the receiver acknowledges each alert (the cab, on `alert-acks`): `send` only
   * hands it over, and the delivery is complete when the acknowledgement comes.
   */
  readonly acknowledges: boolean;
  /** Opens the channel's connections; `receipts` hears what its receivers report. */
  start(receipts: ChannelReceipts): void;
  send(alert: Alert): Promise<void>;
  close(): Promise<void>;
}

/** What a channel whose receivers acknowledge reports to the dispatcher. */
export interface ChannelReceipts {
  acknowledged(alertId: string, vehicle: string): void;
  /** A receiver can be reached again (a vehicle came online): what waits for it is due now. */
  reachable(vehicle: string): void;
  /** A report that could not be read, with what was wrong. */
  refused(detail: string, vehicle: string): void;
}

/** Carries alert events to dispatchers elsewhere (fleet.alerts); a write resolves once durable. */
export interface AlertStreamWriter {
  start(): Promise<void>;
  write(events: AlertEvent[]): Promise<void>;
  close(): Promise<void>;
}
