import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, it } from 'vitest';
import type { AlertChannel, ChannelReceipts } from '../../../cloud/alerts/alert-channel.js';
import { AlertDispatcher, type DispatcherOptions } from '../../../cloud/alerts/alert-dispatcher.js';
import type { DeliveryLedger } from '../../../cloud/alerts/delivery-ledger.js';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import type { Alert } from '../../../shared/contract/alert.js';
import { tempDir, waitFor } from '../../support/harness.js';

/** A channel that records what it is given; `failing` makes its sends fail. */
class RecordingChannel implements AlertChannel {
  readonly sent: { id: string; at: number }[] = [];
  receipts?: ChannelReceipts;
  failing = false;

  constructor(
    readonly name: string,
    readonly cab: boolean,
    readonly acknowledges: boolean,
    readonly idempotent = true,
  ) {}

  start(receipts: ChannelReceipts): void {
    this.receipts = receipts;
  }

  async send(alert: Alert): Promise<void> {
    if (this.failing) throw new Error('receiver away');
    this.sent.push({ id: alert.id, at: Date.now() });
  }

  copies(id: string): number {
    return this.sent.filter((s) => s.id === id).length;
  }

  async close(): Promise<void> {}
}

/**
 * The ledger, refusing `method` as SQLite does while another process holds the file: the next
 * `times` calls, or until `lift()`. `refusedAt` says when each refusal was.
 */
function refusing(ledger: DeliveryLedger, method: keyof DeliveryLedger, times = Infinity) {
  let left = times;
  const refusedAt: number[] = [];
  const wrapped = new Proxy(ledger, {
    get(target, prop: keyof DeliveryLedger) {
      const fn = target[prop].bind(target) as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        if (prop === method && left > 0) {
          left--;
          refusedAt.push(Date.now());
          return Promise.reject(new Database.SqliteError('database is locked', 'SQLITE_BUSY'));
        }
        return fn(...args);
      };
    },
  });
  return { ledger: wrapped, refusedAt, lift: () => void (left = 0) };
}

const FAST: Partial<DispatcherOptions> = {
  pollMs: 20,
  retryBaseMs: 20,
  retryMaxMs: 100,
  resendBaseMs: 80,
  resendMaxMs: 320,
  freshnessMs: 60_000,
};

function liveAlert(vehicle: string, closedAt = Date.now()): Alert {
  return {
    id: `${vehicle}.hot.${closedAt}`,
    vehicle,
    rule: 'hot',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart: closedAt - 10_000,
    windowStart: closedAt - 10_000,
    windowEnd: closedAt,
    observed: 110,
    expected: 105,
    message: 'hot',
    live: true,
    driver: true,
    raisedAt: closedAt,
    closedAt,
  };
}

describe('AlertDispatcher', () => {
  const open: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0)) await o.stop();
  });

  function start(
    store: SqliteStore,
    channels: AlertChannel[],
    opts: Partial<DispatcherOptions> = {},
    ledger: DeliveryLedger = store.deliveries,
  ) {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const registry = new Registry();
    const dispatcher = new AlertDispatcher(ledger, channels, log, registry, { ...FAST, ...opts });
    dispatcher.start();
    open.push({ stop: async () => (await dispatcher.stop(), await store.close()) });
    const counter = async (name: string) => (await registry.getSingleMetric(name)!.get()).values.reduce((n, v) => n + v.value, 0);
    return { dispatcher, lines, counter };
  }

  async function raise(store: SqliteStore, ...alerts: Alert[]): Promise<void> {
    await store.write({ received: [], duplicates: 0, events: alerts.map((alert) => ({ kind: 'raised' as const, alert })), at: Date.now() });
  }

  it('gives the cab an alert again on a growing backoff until it acknowledges, then no more', async () => {
    const store = new SqliteStore(join(tempDir(), 'fleet.db'));
    const cab = new RecordingChannel('driver', true, true);
    const { dispatcher } = start(store, [cab]);
    const first = liveAlert('truck-1');
    await raise(store, first);
    dispatcher.kick();
    await waitFor('four copies', () => cab.copies(first.id) >= 4, 10_000, 10);
    // Equal jitter: copy k+1 comes at least half of min(80 · 2^(k-1), 320) ms after copy k.
    const at = cab.sent.filter((s) => s.id === first.id).map((s) => s.at);
    [40, 80, 160].forEach((least, i) =>
      assert.ok(at[i + 1]! - at[i]! >= least - 5, `copy ${i + 2} came ${at[i + 1]! - at[i]!} ms after copy ${i + 1}`),
    );

    cab.receipts!.acknowledged(first.id, 'truck-1');
    const copies = cab.copies(first.id);
    // The vehicle coming online makes whatever still waits for it due at once; a later alert shows the rounds went on.
    cab.receipts!.reachable('truck-1');
    const second = liveAlert('truck-2', Date.now() + 1);
    await raise(store, second);
    dispatcher.kick();
    await waitFor('the later alert sent', () => cab.copies(second.id) >= 1, 10_000, 10);
    assert.equal(cab.copies(first.id), copies, 'an acknowledged alert is not sent again');
    assert.equal((await store.getAlert(first.id))!.driverSentAt !== null, true);
    assert.deepEqual(
      (await store.deliveries.awaitingAck('driver')).map((a) => a.id),
      [second.id],
    );
  });

  it('records an unacknowledged alert as expired once it is no longer fresh, counts it, and stops sending it', async () => {
    const store = new SqliteStore(join(tempDir(), 'fleet.db'));
    const cab = new RecordingChannel('driver', true, true);
    const { dispatcher, counter, lines } = start(store, [cab], { freshnessMs: 400 });
    const stale = liveAlert('truck-1');
    await raise(store, stale);
    dispatcher.kick();
    await waitFor('the alert expired', async () => (await counter('fleet_alert_expired_total')) === 1, 10_000, 10);
    assert.ok(cab.copies(stale.id) >= 1);
    assert.deepEqual(await store.deliveries.awaitingAck('driver'), []);
    assert.equal((await store.getAlert(stale.id))!.driverSentAt, null);
    assert.ok(lines.some((l) => l.alertId === stale.id && String(l.msg).startsWith('alert expired')));
    const copies = cab.copies(stale.id);
    cab.receipts!.reachable('truck-1');
    const later = liveAlert('truck-2', Date.now() + 1);
    await raise(store, later);
    dispatcher.kick();
    await waitFor('the later alert sent', () => cab.copies(later.id) >= 1, 10_000, 10);
    assert.equal(cab.copies(stale.id), copies, 'never sent after it expired');
  });

  it('after a restart sends the cab what it had not acknowledged at once, and the webhook nothing twice', async () => {
    const path = join(tempDir(), 'fleet.db');
    const cab = new RecordingChannel('driver', true, true);
    const webhook = new RecordingChannel('webhook', false, false);
    const before = start(new SqliteStore(path), [cab, webhook], { resendBaseMs: 60_000, resendMaxMs: 60_000 });
    const store = new SqliteStore(path);
    const a = liveAlert('truck-1');
    await raise(store, a);
    await store.close();
    before.dispatcher.kick();
    await waitFor('the cab and the webhook given it', () => cab.copies(a.id) === 1 && webhook.copies(a.id) === 1, 10_000, 10);
    await open.shift()!.stop();

    const cabAgain = new RecordingChannel('driver', true, true);
    const webhookAgain = new RecordingChannel('webhook', false, false);
    const after = start(new SqliteStore(path), [cabAgain, webhookAgain], { resendBaseMs: 60_000, resendMaxMs: 60_000 });
    after.dispatcher.kick();
    await waitFor('the cab given it again', () => cabAgain.copies(a.id) === 1, 10_000, 10);
    cabAgain.receipts!.acknowledged(a.id, 'truck-1');
    await waitFor('the acknowledgement recorded', async () => (await after.counter('fleet_alert_deliveries_total')) === 1, 10_000, 10);
    assert.equal(webhookAgain.copies(a.id), 0, 'the webhook had it before the restart');
  });

  it('rides out a ledger that refuses: logged with its code, counted, retried on a backoff, unhealthy meanwhile, delivered once', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const store = new SqliteStore(join(tempDir(), 'fleet.db'));
      const webhook = new RecordingChannel('webhook', false, false);
      // Refused until lifted, as while the console holds the file.
      const busy = refusing(store.deliveries, 'claim');
      const { dispatcher, counter, lines } = start(store, [webhook], {}, busy.ledger);
      const a = liveAlert('truck-1');
      await raise(store, a);
      dispatcher.kick();
      await waitFor('three refusals', () => busy.refusedAt.length >= 3, 10_000, 5);
      const health = dispatcher.health();
      assert.equal(health.ok, false);
      assert.match(String(health.ledger), /^delivery ledger refused \d+ times since .*; last: SQLITE_BUSY: database is locked$/);
      // Equal jitter on a 20 ms base: at least 10, then 20 ms between rounds.
      assert.ok(
        busy.refusedAt[1]! - busy.refusedAt[0]! >= 10 - 2 && busy.refusedAt[2]! - busy.refusedAt[1]! >= 20 - 2,
        `refused at ${busy.refusedAt.join(', ')}`,
      );
      assert.ok((await counter('fleet_alert_ledger_errors_total')) >= 3);
      assert.ok(lines.some((l) => l.code === 'SQLITE_BUSY' && l.msg === 'delivery ledger unavailable, will retry'));

      busy.lift();
      await waitFor('the alert delivered', () => webhook.copies(a.id) === 1, 10_000, 10);
      await waitFor('healthy again', () => dispatcher.health().ok, 10_000, 10);
      assert.deepEqual(dispatcher.health(), { ok: true });
      assert.deepEqual(unhandled, []);
      assert.equal(webhook.copies(a.id), 1, 'delivered once');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('starts while the ledger refuses, and settles what a crash left in doubt once it answers', async () => {
    const path = join(tempDir(), 'fleet.db');
    const store = new SqliteStore(path);
    const a = liveAlert('truck-1');
    await raise(store, a);
    // A crash between the claim and the outcome: the webhook drops repeats, so it is tried again.
    await store.deliveries.claim(a.id, 'webhook', Date.now());
    const webhook = new RecordingChannel('webhook', false, false);
    const { dispatcher } = start(store, [webhook], {}, refusing(store.deliveries, 'inDoubt', 2).ledger);
    dispatcher.kick();
    await waitFor('the claim in doubt released and delivered', () => webhook.copies(a.id) === 1, 10_000, 10);
    assert.equal(dispatcher.health().ok, true);
  });

  it('a ledger write that follows a send is retried until it holds, so the alert is not sent twice', async () => {
    const store = new SqliteStore(join(tempDir(), 'fleet.db'));
    const webhook = new RecordingChannel('webhook', false, false);
    const { dispatcher, counter } = start(store, [webhook], {}, refusing(store.deliveries, 'sent', 2).ledger);
    const a = liveAlert('truck-1');
    await raise(store, a);
    dispatcher.kick();
    await waitFor(
      'the delivery recorded',
      async () =>
        (await store.deliveries.undelivered('webhook', false)).length === 0 && (await store.deliveries.inDoubt('webhook')).length === 0,
      10_000,
      10,
    );
    assert.equal(await counter('fleet_alert_ledger_errors_total'), 2);
    assert.equal(await counter('fleet_alert_deliveries_total'), 1);
    assert.equal(webhook.copies(a.id), 1);
  });
});
