import type { StoredAlert } from '../store/stored-alert.js';

/**
 * Where each (alert, channel) delivery stands, as the dispatcher decides by it:
 * - `sending`: claimed, the attempt under way (after a crash: in doubt);
 * - `sent`: the channel has it. For a channel whose receiver acknowledges (the cab) this
 *   only means handed over: it is re-sent until
 * - `acknowledged`: the receiver confirmed it, or
 * - `expired`: it was no longer fresh before the receiver had it.
 * Each step is recorded with when it was reached, and is also an alert change
 * (`sent:driver`, `delivered:webhook`, `expired:driver` …) for the console's event stream.
 * Any call may reject (SQLITE_BUSY while another process writes, a full disk, PostgreSQL
 * away): the dispatcher retries it.
 *
 * The store keeps it beside the alerts it covers (store/sqlite/delivery-table.ts,
 * store/postgres/delivery-table.ts).
 */
export interface DeliveryLedger {
  /** Alerts a channel has not been given yet (for the cab: live ones meant for the driver, not cleared), oldest first. */
  undelivered(channel: string, cab: boolean): Promise<StoredAlert[]>;
  /** Alerts handed to a channel whose receiver has not acknowledged them yet, longest waiting first. */
  awaitingAck(channel: string): Promise<StoredAlert[]>;
  /** Marks a delivery as under way before it is attempted; false if it was claimed before. */
  claim(alertId: string, channel: string, at: number): Promise<boolean>;
  /** The channel has it; for a receiver that acknowledges, the wait for that begins. False if it was acknowledged already. */
  sent(alertId: string, channel: string, at: number, awaitingAck: boolean): Promise<boolean>;
  /** False when the alert was not waiting for this (another dispatcher's, or acknowledged before). */
  acknowledged(alertId: string, channel: string, at: number): Promise<boolean>;
  /** No longer fresh and never acknowledged (or never sent at all); false if that was recorded before. */
  expired(alertId: string, channel: string, at: number): Promise<boolean>;
  /** Gives a failed delivery back, to be tried again. */
  release(alertId: string, channel: string): Promise<void>;
  /** Deliveries a crash interrupted: whether they reached the channel is unknown. */
  inDoubt(channel: string): Promise<string[]>;
}
