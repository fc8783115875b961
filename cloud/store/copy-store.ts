import type { FleetStore, ReadingKey } from '../store.js';

/** What a copy did: each item seen in the source, and how many of them were new to the target. */
export interface CopyReport {
  readings: { seen: number; stored: number };
  latest: number;
  alerts: number;
  deliveries: number;
  changes: { seen: number; appended: number };
  duplicatesAdded: number;
}

export interface CopyOptions {
  /** The source as the target's marks name it (a file by its absolute path): the same source is resumed, never applied twice. */
  source: string;
  /** Rows read and written per transaction: what the copy holds in memory at once. */
  pageRows: number;
  /** After each page of readings: how many of the source's readings were gone through, of about how many. */
  onReadings?: (done: number, total: number) => void;
}

/**
 * Copies everything one operational store holds into another, a page at a time in key
 * order: readings by (vehicle, seq) with their receive times, the latest values, alerts with
 * their lifecycle, the delivery ledger, the change feed and the duplicates count. Every step
 * is idempotent, so a copy run again, or killed and run again, ends with each item once;
 * into a target a detector writes meanwhile, nothing there moves backwards (see the import
 * methods of FleetStore). Alerts go before the ledger and the changes that name them, so a
 * console on the target never reads a change of an alert it cannot find.
 */
export async function copyStore(from: FleetStore, to: FleetStore, opts: CopyOptions): Promise<CopyReport> {
  const report: CopyReport = {
    readings: { seen: 0, stored: 0 },
    latest: 0,
    alerts: 0,
    deliveries: 0,
    changes: { seen: 0, appended: 0 },
    duplicatesAdded: 0,
  };
  const { readingsStored: total, duplicates } = await from.counts();
  let after: ReadingKey | undefined;
  for (;;) {
    const page = await from.readingsPage(after, opts.pageRows);
    if (page.length === 0) break;
    // A retried write: readings a previous run stored are not counted as duplicates again.
    const { stored } = await to.write({
      received: page.map(({ reading, receivedAt }) => ({ readings: [reading], receivedAt })),
      duplicates: 0,
      events: [],
      at: Date.now(),
      retry: true,
    });
    report.readings.seen += page.length;
    report.readings.stored += stored;
    after = page.at(-1)!.reading;
    opts.onReadings?.(report.readings.seen, Math.max(total, report.readings.seen));
  }

  // A vehicle and sensor per row: small enough to take at once. Rows whose readings retention dropped come along too.
  const latest = await from.latestRows();
  await to.importLatest(latest);
  report.latest = latest.length;

  let alertAfter: string | undefined;
  for (let page; (page = await from.alertsPage(alertAfter, opts.pageRows)).length > 0; alertAfter = page.at(-1)!.id) {
    await to.importAlerts(page);
    report.alerts += page.length;
  }
  let deliveryAfter: { alertId: string; channel: string } | undefined;
  for (let page; (page = await from.deliveriesPage(deliveryAfter, opts.pageRows)).length > 0; deliveryAfter = page.at(-1)!) {
    await to.importDeliveries(page);
    report.deliveries += page.length;
  }
  for (let id = 0, page; (page = await from.changesAfter(id, opts.pageRows)).length > 0; id = page.at(-1)!.id) {
    report.changes.seen += page.length;
    report.changes.appended += await to.importChanges(opts.source, page);
  }
  report.duplicatesAdded = await to.importDuplicates(opts.source, duplicates);
  return report;
}
