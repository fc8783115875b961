import type pg from 'pg';
import type { DeliveryLedger } from '../../alerts/delivery-ledger.js';
import { STORED_ALERT_COLUMNS, toStoredAlert, type StoredAlert } from '../stored-alert.js';
import { inTransaction } from './connection.js';
import { LOCK_CHANGES } from './schema.js';

/** A ledger step with its alert change ($4 the change's kind), when it moved the delivery. */
const withChange = (update: string) =>
  `WITH d AS (${update} RETURNING alert_id) INSERT INTO alert_changes (alert_id, kind, at) SELECT alert_id, $4, $3 FROM d RETURNING alert_id`;

const SQL = {
  undelivered: `SELECT ${STORED_ALERT_COLUMNS} FROM alerts LEFT JOIN deliveries d ON d.alert_id = alerts.id AND d.channel = $1
    WHERE d.alert_id IS NULL AND (NOT $2::boolean OR (alerts.live AND alerts.driver AND alerts.state != 'cleared')) ORDER BY alerts.raised_at LIMIT 100`,
  awaitingAck: `SELECT ${STORED_ALERT_COLUMNS} FROM alerts JOIN deliveries d ON d.alert_id = alerts.id AND d.channel = $1
    WHERE d.state = 'sent' ORDER BY d.at LIMIT 1000`,
  claim: `INSERT INTO deliveries (alert_id, channel, state, at) VALUES ($1, $2, 'sending', $3) ON CONFLICT DO NOTHING RETURNING alert_id`,
  sent: withChange(`UPDATE deliveries SET state = 'sent', at = $3 WHERE alert_id = $1 AND channel = $2 AND state = 'sending'`),
  // A late acknowledgement of an expired alert still says the cab has it.
  acknowledged: withChange(`UPDATE deliveries SET state = 'acknowledged', at = $3 WHERE alert_id = $1 AND channel = $2
    AND state IN ('sending', 'sent', 'expired')`),
  expired: withChange(`INSERT INTO deliveries (alert_id, channel, state, at) VALUES ($1, $2, 'expired', $3)
    ON CONFLICT (alert_id, channel) DO UPDATE SET state = 'expired', at = excluded.at WHERE deliveries.state = 'sent'`),
  release: `DELETE FROM deliveries WHERE alert_id = $1 AND channel = $2 AND state = 'sending'`,
  inDoubt: `SELECT alert_id FROM deliveries WHERE channel = $1 AND state = 'sending'`,
};

/**
 * The delivery ledger in the `deliveries` table beside the alerts, as in SQLite
 * (../sqlite/delivery-table.ts): dispatchers on several hosts share it, a claim being the
 * insert that only one of them wins.
 */
export class PgDeliveryTable implements DeliveryLedger {
  constructor(private readonly pool: pg.Pool) {}

  async undelivered(channel: string, cab: boolean): Promise<StoredAlert[]> {
    return (await this.pool.query(SQL.undelivered, [channel, cab])).rows.map(toStoredAlert);
  }

  async awaitingAck(channel: string): Promise<StoredAlert[]> {
    return (await this.pool.query(SQL.awaitingAck, [channel])).rows.map(toStoredAlert);
  }

  async claim(alertId: string, channel: string, at: number): Promise<boolean> {
    return (await this.pool.query(SQL.claim, [alertId, channel, at])).rowCount === 1;
  }

  async sent(alertId: string, channel: string, at: number, awaitingAck: boolean): Promise<boolean> {
    return this.step(SQL.sent, alertId, channel, at, `${awaitingAck ? 'sent' : 'delivered'}:${channel}`);
  }

  async acknowledged(alertId: string, channel: string, at: number): Promise<boolean> {
    return this.step(SQL.acknowledged, alertId, channel, at, `delivered:${channel}`);
  }

  async expired(alertId: string, channel: string, at: number): Promise<boolean> {
    return this.step(SQL.expired, alertId, channel, at, `expired:${channel}`);
  }

  async release(alertId: string, channel: string): Promise<void> {
    await this.pool.query(SQL.release, [alertId, channel]);
  }

  async inDoubt(channel: string): Promise<string[]> {
    return (await this.pool.query<{ alert_id: string }>(SQL.inDoubt, [channel])).rows.map((r) => r.alert_id);
  }

  private step(sql: string, alertId: string, channel: string, at: number, change: string): Promise<boolean> {
    return inTransaction(this.pool, async (c) => {
      await c.query(LOCK_CHANGES);
      return (await c.query(sql, [alertId, channel, at, change])).rowCount === 1;
    });
  }
}
