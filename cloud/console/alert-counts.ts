import { ALERT_STATES, type AlertState } from '../../shared/contract/alert.js';
import type { FleetStore } from '../store.js';

/**
 * Aggregates the console needs and FleetStore does not offer. Counting in SQL keeps the
 * numbers right however many alerts there are (listAlerts is capped by its limit).
 */
export class AlertCounts {
  private readonly st;

  constructor(store: FleetStore) {
    this.st = {
      byState: store.db.prepare('SELECT state, count(*) AS n FROM alerts GROUP BY state'),
      activeByVehicle: store.db.prepare(`SELECT vehicle, count(*) AS n FROM alerts WHERE state = 'active' GROUP BY vehicle`),
    };
  }

  byState(): Record<AlertState, number> {
    const counts = Object.fromEntries(ALERT_STATES.map((s) => [s, 0])) as Record<AlertState, number>;
    for (const { state, n } of this.st.byState.all() as { state: AlertState; n: number }[]) counts[state] = n;
    return counts;
  }

  activeByVehicle(): Map<string, number> {
    const rows = this.st.activeByVehicle.all() as { vehicle: string; n: number }[];
    return new Map(rows.map((r) => [r.vehicle, r.n]));
  }
}
