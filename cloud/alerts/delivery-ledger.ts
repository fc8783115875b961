import type Database from 'better-sqlite3';
import { toAlert, type AlertRow, type FleetStore, type StoredAlert } from '../store.js';

/**
 * Where each (alert, channel) delivery stands, in the store beside the alerts:
 * - `sending`: claimed, the attempt under way (after a crash: in doubt);
 * - `sent`: the channel has it. For a channel whose receiver acknowledges (the cab) this
 *   only means handed over: it is re-sent until
 * - `acknowledged`: the receiver confirmed it, or
 * - `expired`: it was no longer fresh before the receiver had it.
 * `at` is when the delivery reached its state. Every step is also an alert change
 * (`sent:driver`, `delivered:webhook`, `expired:driver` …) for the console's event stream.
 */
export class DeliveryLedger {
  private readonly db: Database.Database;
  private readonly st;

  constructor(store: FleetStore) {
    const db = (this.db = store.db);
    this.st = {
      undelivered: db.prepare(`SELECT a.* FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id AND d.channel = @channel
        WHERE d.alert_id IS NULL AND (@cab = 0 OR (a.live = 1 AND a.driver = 1 AND a.state != 'cleared')) ORDER BY a.raised_at LIMIT 100`),
      awaitingAck: db.prepare(`SELECT a.* FROM alerts a JOIN deliveries d ON d.alert_id = a.id AND d.channel = ?
        WHERE d.state = 'sent' ORDER BY d.at LIMIT 1000`),
      claim: db.prepare(`INSERT OR IGNORE INTO deliveries (alert_id, channel, state, at) VALUES (?, ?, 'sending', ?)`),
      sent: db.prepare(`UPDATE deliveries SET state = 'sent', at = ? WHERE alert_id = ? AND channel = ? AND state = 'sending'`),
      release: db.prepare(`DELETE FROM deliveries WHERE alert_id = ? AND channel = ? AND state = 'sending'`),
      inDoubt: db.prepare(`SELECT alert_id AS alertId FROM deliveries WHERE channel = ? AND state = 'sending'`),
      // A late acknowledgement of an expired alert still says the cab has it.
      acknowledged: db.prepare(`UPDATE deliveries SET state = 'acknowledged', at = ? WHERE alert_id = ? AND channel = ?
        AND state IN ('sending', 'sent', 'expired')`),
      expired: db.prepare(`INSERT INTO deliveries (alert_id, channel, state, at) VALUES (?, ?, 'expired', ?)
        ON CONFLICT (alert_id, channel) DO UPDATE SET state = 'expired', at = excluded.at WHERE deliveries.state = 'sent'`),
      change: db.prepare('INSERT INTO alert_changes (alert_id, kind, at) VALUES (?, ?, ?)'),
    };
  }

  /** Alerts a channel has not been given yet (for the cab: live ones meant for the driver, not cleared). */
  undelivered(channel: string, cab: boolean): StoredAlert[] {
    return (this.st.undelivered.all({ channel, cab: cab ? 1 : 0 }) as AlertRow[]).map(toAlert);
  }

  /** Alerts handed to a channel whose receiver has not acknowledged them yet, longest waiting first. */
  awaitingAck(channel: string): StoredAlert[] {
    return (this.st.awaitingAck.all(channel) as AlertRow[]).map(toAlert);
  }

  /** Marks a delivery as under way before it is attempted; false if it was claimed before. */
  claim(alertId: string, channel: string, at: number): boolean {
    return this.st.claim.run(alertId, channel, at).changes === 1;
  }

  /** The channel has it; for a receiver that acknowledges, the wait for that begins. False if it was acknowledged already. */
  sent(alertId: string, channel: string, at: number, awaitingAck: boolean): boolean {
    return this.step(() => this.st.sent.run(at, alertId, channel).changes, alertId, `${awaitingAck ? 'sent' : 'delivered'}:${channel}`, at);
  }

  /** False when the alert was not waiting for this (another dispatcher's, or acknowledged before). */
  acknowledged(alertId: string, channel: string, at: number): boolean {
    return this.step(() => this.st.acknowledged.run(at, alertId, channel).changes, alertId, `delivered:${channel}`, at);
  }

  /** No longer fresh and never acknowledged (or never sent at all); false if that was recorded before. */
  expired(alertId: string, channel: string, at: number): boolean {
    return this.step(() => this.st.expired.run(alertId, channel, at).changes, alertId, `expired:${channel}`, at);
  }

  /** Gives a failed delivery back, to be tried again. */
  release(alertId: string, channel: string): void {
    this.st.release.run(alertId, channel);
  }

  /** Deliveries a crash interrupted: whether they reached the channel is unknown. */
  inDoubt(channel: string): string[] {
    return (this.st.inDoubt.all(channel) as { alertId: string }[]).map((r) => r.alertId);
  }

  private step(update: () => number, alertId: string, change: string, at: number): boolean {
    return this.db.transaction(() => {
      if (update() !== 1) return false;
      this.st.change.run(alertId, change, at);
      return true;
    })();
  }
}
