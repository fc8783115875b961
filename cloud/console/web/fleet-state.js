// What the page knows: vehicles with their latest values, and alerts by id. Every update,
// whatever its path (snapshot, live event, the answer to an action), goes through here,
// so a reconnect or a late answer can neither duplicate an alert nor move it backwards.

/** The lifecycle only moves forward: an older copy of an alert never overwrites a newer one. */
const STATE_RANK = { active: 0, acknowledged: 1, cleared: 2 };
const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 };

export class FleetState {
  vehicles = new Map();
  alerts = new Map();
  /** Vehicle id → ids of its alerts not yet cleared. */
  open = new Map();

  /** Merges a `/api/vehicles` snapshot; returns the ids it touched. */
  setVehicles(list) {
    for (const v of list) {
      const known = this.vehicle(v.id);
      known.online = v.online;
      known.statusAt = v.statusAt;
      this.mergeValues(known, v.values);
    }
    return list.map((v) => v.id);
  }

  /** Applies a live `values` frame; returns the ids it touched. */
  applyValues(frame) {
    for (const { id, values } of frame) this.mergeValues(this.vehicle(id), values);
    return frame.map((v) => v.id);
  }

  /** Status documents arrive in the broker's order; their `at` is no guide (a Last Will is written at connect). */
  applyStatus({ vehicle, online, at }) {
    const v = this.vehicle(vehicle);
    v.online = online;
    v.statusAt = at;
  }

  /** Returns 'new', 'changed' or undefined (nothing to show). */
  upsertAlert(alert) {
    const known = this.alerts.get(alert.id);
    if (known && STATE_RANK[known.state] > STATE_RANK[alert.state]) return undefined;
    this.alerts.set(alert.id, alert);
    const open = this.open.get(alert.vehicle) ?? new Set();
    if (alert.state === 'cleared') open.delete(alert.id);
    else open.add(alert.id);
    this.open.set(alert.vehicle, open);
    return known ? 'changed' : 'new';
  }

  /** The marker and table summary of a vehicle's open alerts: how many are active, and the loudest state. */
  alertSummary(id) {
    let active = 0;
    let level = null;
    for (const alertId of this.open.get(id) ?? []) {
      const a = this.alerts.get(alertId);
      if (a.state === 'active') {
        active++;
        if (level === null || level === 'acknowledged' || SEVERITY_RANK[a.severity] > SEVERITY_RANK[level]) level = a.severity;
      } else if (level === null) {
        level = 'acknowledged';
      }
    }
    return { active, level };
  }

  vehicle(id) {
    let v = this.vehicles.get(id);
    if (!v) this.vehicles.set(id, (v = { id, online: false, statusAt: null, lastSeen: null, values: {} }));
    return v;
  }

  mergeValues(v, values) {
    for (const [sensor, value] of Object.entries(values)) {
      const old = v.values[sensor];
      if (old && old.ts > value.ts) continue;
      v.values[sensor] = value;
      if (v.lastSeen == null || value.ts > v.lastSeen) v.lastSeen = value.ts;
    }
  }
}
