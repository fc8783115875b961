import { el, formatAgo, formatNumber, formatTime, setText } from './format.js';

const VALUE_COLUMNS = ['speed', 'engine_temp', 'container_temp'];

/**
 * The vehicles table: one row per vehicle, updated in place, sortable by any column and
 * filterable by id and status. Rows are only moved when the order really changed.
 */
export class VehiclesTable {
  rows = new Map();
  sortKey = 'id';
  descending = false;

  constructor(state, { staleAfterMs, onSelect }) {
    this.state = state;
    this.staleAfterMs = staleAfterMs;
    this.onSelect = onSelect;
    this.body = document.querySelector('#vehicles tbody');
    this.filterText = document.getElementById('vehicle-filter');
    this.filterStatus = document.getElementById('vehicle-status');
    this.filterText.oninput = this.filterStatus.onchange = () => this.applyFilter(this.rows.keys());
    for (const th of document.querySelectorAll('#vehicles th[data-sort]')) th.onclick = () => this.sortBy(th);
    // Times are formatted when pointed at: formatting 1,500 of them a second is what slowed a large fleet's page.
    this.body.onmouseover = (e) => {
      const td = e.target.closest('td[data-ts]');
      if (td) td.title = `at ${formatTime(Number(td.dataset.ts))}`;
    };
  }

  /** Refreshes the given rows (all when omitted), then their filter, then the order if it may have moved. */
  render(ids = [...this.state.vehicles.keys()]) {
    const now = Date.now();
    const known = this.rows.size;
    for (const id of ids) this.update(this.row(id), this.state.vehicles.get(id), now);
    this.applyFilter(ids);
    // By id, only a new vehicle moves anything; by a value, any update may.
    if (this.sortKey !== 'id' || this.rows.size !== known) this.applyOrder();
    setText(document.getElementById('vehicle-count'), `${this.state.vehicles.size}`);
  }

  sortBy(th) {
    this.descending = th.dataset.sort === this.sortKey ? !this.descending : false;
    this.sortKey = th.dataset.sort;
    for (const other of document.querySelectorAll('#vehicles th[data-sort]')) other.classList.remove('sorted', 'desc');
    th.classList.add('sorted');
    th.classList.toggle('desc', this.descending);
    this.applyOrder();
  }

  select(id) {
    for (const [rowId, r] of this.rows) r.tr.classList.toggle('selected', rowId === id);
  }

  row(id) {
    let r = this.rows.get(id);
    if (r) return r;
    const cells = {
      id: el('td', { textContent: id }),
      status: el('span', { className: 'status badge offline', textContent: 'offline' }),
      lastSeen: el('td'),
      speed: el('td', { className: 'num' }),
      engine_temp: el('td', { className: 'num' }),
      container_temp: el('td', { className: 'num' }),
      alerts: el('td', { className: 'num alerts-count' }),
    };
    const tr = el(
      'tr',
      {},
      cells.id,
      el('td', {}, cells.status),
      cells.lastSeen,
      cells.speed,
      cells.engine_temp,
      cells.container_temp,
      cells.alerts,
    );
    tr.dataset.vehicle = id;
    tr.onclick = () => this.onSelect(id);
    this.body.append(tr);
    r = { tr, cells };
    this.rows.set(id, r);
    return r;
  }

  update({ cells }, v, now) {
    const status = v.online ? 'online' : 'offline';
    setText(cells.status, status);
    if (!cells.status.classList.contains(status)) cells.status.className = `status badge ${status}`;
    setText(cells.lastSeen, formatAgo(v.lastSeen, now));
    if (v.lastSeen != null) cells.lastSeen.dataset.ts = String(v.lastSeen);
    for (const sensor of VALUE_COLUMNS) {
      // GPS ground speed stands in when the vehicle reports no separate speed sensor.
      const reading = v.values[sensor] ?? (sensor === 'speed' ? v.values.gps : undefined);
      const td = cells[sensor];
      setText(td, formatNumber(reading?.value));
      const stale = !reading || now - reading.ts > this.staleAfterMs;
      td.classList.toggle('stale', stale);
      if (reading && td.dataset.ts !== String(reading.ts)) td.dataset.ts = String(reading.ts);
    }
    const { active } = this.state.alertSummary(v.id);
    setText(cells.alerts, String(active));
    cells.alerts.classList.toggle('active', active > 0);
  }

  applyFilter(ids) {
    const text = this.filterText.value.trim().toLowerCase();
    const status = this.filterStatus.value;
    for (const id of ids) {
      const { tr } = this.rows.get(id);
      const v = this.state.vehicles.get(id);
      const shown =
        (!text || id.toLowerCase().includes(text)) &&
        (!status ||
          (status === 'online' && v.online) ||
          (status === 'offline' && !v.online) ||
          (status === 'alerting' && this.state.alertSummary(id).level !== null));
      if (tr.hidden === shown) tr.hidden = !shown;
    }
  }

  applyOrder() {
    const key = (id) => this.sortValue(id);
    const sign = this.descending ? -1 : 1;
    const ids = [...this.rows.keys()].sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      if (ka === kb) return a.localeCompare(b);
      // Missing values sort last, whichever the direction.
      if (ka == null) return 1;
      if (kb == null) return -1;
      return (ka < kb ? -1 : 1) * sign;
    });
    const current = this.body.children;
    if (ids.every((id, i) => current[i]?.dataset.vehicle === id)) return;
    this.body.append(...ids.map((id) => this.rows.get(id).tr));
  }

  sortValue(id) {
    const v = this.state.vehicles.get(id);
    switch (this.sortKey) {
      case 'id':
        return id;
      case 'online':
        return v.online ? 0 : 1;
      case 'lastSeen':
        return v.lastSeen;
      case 'alerts':
        return this.state.alertSummary(id).active;
      default:
        return v.values[this.sortKey]?.value;
    }
  }
}
