import type Database from 'better-sqlite3';
import type { DeliveryLedger } from '../../alerts/delivery-ledger.js';
import { STORED_ALERT_COLUMNS, toStoredAlert, type StoredAlert } from '../stored-alert.js';

/**
 * The delivery ledger in the store's `deliveries` table, beside the alerts it covers, so the
 * console shows when the cab was given an alert. `at` is when a delivery reached its state.
 * SQLite answers at once: each method does its work before it returns its promise.
 */
export class DeliveryTable implements DeliveryLedger {
  private readonly st;

  constructor(private readonly db: Database.Database) {
    this.st = {
      undelivered:
        db.prepare(`SELECT ${STORED_ALERT_COLUMNS} FROM alerts LEFT JOIN deliveries d ON d.alert_id = alerts.id AND d.channel = @channel
        WHERE d.alert_id IS NULL AND (@cab = 0 OR (alerts.live = 1 AND alerts.driver = 1 AND alerts.state != 'cleared')) ORDER BY alerts.raised_at LIMIT 100`),
      awaitingAck: db.prepare(`SELECT ${STORED_ALERT_COLUMNS} FROM alerts JOIN deliveries d ON d.alert_id = alerts.id AND d.channel = ?
        WHERE d.state = 'sent' ORDER BY d.at LIMIT 1000`),
      claim: db.prepare(`INSERT OR IGNORE INTO deliveries (alert_id, channel, state, at) VALUES (?, ?, 'sending', ?)`),
      sent: db.prepare(`UPDATE deliveries SET state = 'sent', at = ? WHERE alert_id = ? AND channel = ? AND state = 'sending'`),
      release: db.prepare(`DELETE FROM deliveries WHERE alert_id = ? AND channel = ? AND state = 'sending'`),
      inDoubt: db.prepare(`SELECT alert_id FROM deliveries WHERE channel = ? AND state = 'sending'`).pluck(),
      // A late acknowledgement of an expired alert still says the cab has it.
      acknowledged: db.prepare(`UPDATE deliveries SET state = 'acknowledged', at = ? WHERE alert_id = ? AND channel = ?
        AND state IN ('sending', 'sent', 'expired')`),
      expired: db.prepare(`INSERT INTO deliveries (alert_id, channel, state, at) VALUES (?, ?, 'expired', ?)
        ON CONFLICT (alert_id, channel) DO UPDATE SET state = 'expired', at = excluded.at WHERE deliveries.state = 'sent'`),
      change: db.prepare('INSERT INTO alert_changes (alert_id, kind, at) VALUES (?, ?, ?)'),
    };
  }

  async undelivered(channel: string, cab: boolean): Promise<StoredAlert[]> {
    return this.st.undelivered.all({ channel, cab: cab ? 1 : 0 }).map(toStoredAlert);
  }

  async awaitingAck(channel: string): Promise<StoredAlert[]> {
    return this.st.awaitingAck.all(channel).map(toStoredAlert);
  }

  async claim(alertId: string, channel: string, at: number): Promise<boolean> {
    return this.st.claim.run(alertId, channel, at).changes === 1;
  }

  async sent(alertId: string, channel: string, at: number, awaitingAck: boolean): Promise<boolean> {
    return this.step(() => this.st.sent.run(at, alertId, channel).changes, alertId, `${awaitingAck ? 'sent' : 'delivered'}:${channel}`, at);
  }

  async acknowledged(alertId: string, channel: string, at: number): Promise<boolean> {
    return this.step(() => this.st.acknowledged.run(at, alertId, channel).changes, alertId, `delivered:${channel}`, at);
  }

  async expired(alertId: string, channel: string, at: number): Promise<boolean> {
    return this.step(() => this.st.expired.run(alertId, channel, at).changes, alertId, `expired:${channel}`, at);
  }

  async release(alertId: string, channel: string): Promise<void> {
    this.st.release.run(alertId, channel);
  }

  async inDoubt(channel: string): Promise<string[]> {
    return this.st.inDoubt.all(channel) as string[];
  }

  private step(update: () => number, alertId: string, change: string, at: number): boolean {
    return this.db.transaction(() => {
      if (update() !== 1) return false;
      this.st.change.run(alertId, change, at);
      return true;
    })();
  }
}
