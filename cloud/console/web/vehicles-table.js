import { el, formatAgo, formatNumber, formatTime, setText } from './format.js';

const VALUE_COLUMNS = ['speed', 'engine_temp', 'container_temp'];

/** Rows drawn beyond each edge of the visible ones, so a scroll shows rows before its frame draws more. */
const OVERSCAN = 10;

/**
 * The vehicles table: one row per vehicle, sortable by any column and filterable by id and
 * status. Only the rows in view (and a few either side) are in the document: a fleet of
 * thousands would otherwise cost a style and layout of thousands of rows every second. The
 * body's padding stands in for the rest, so the scroll bar is the whole list's. Live values
 * update the rows in view at once; the order and the filter follow them every tick.
 */
export class VehiclesTable {
  /** Vehicle id → its row, made when first shown. */
  rows = new Map();
  /** The filtered and sorted ids, and those of the rows in the document. */
  order = [];
  shown = [];
  shownSet = new Set();
  filteredOut = 0;
  sortKey = 'id';
  descending = false;
  selected = null;
  rowHeight = 30;
  measured = false;
  scrollAsked = false;

  constructor(state, { staleAfterMs, onSelect }) {
    this.state = state;
    this.staleAfterMs = staleAfterMs;
    this.onSelect = onSelect;
    this.body = document.querySelector('#vehicles tbody');
    this.scroller = this.body.closest('.scroll');
    this.filterText = document.getElementById('vehicle-filter');
    this.filterStatus = document.getElementById('vehicle-status');
    this.filterText.oninput = this.filterStatus.onchange = () => this.reorder();
    for (const th of document.querySelectorAll('#vehicles th[data-sort]')) th.onclick = () => this.sortBy(th);
    this.scroller.onscroll = () => {
      if (this.scrollAsked) return;
      this.scrollAsked = true;
      requestAnimationFrame(() => {
        this.scrollAsked = false;
        this.renderWindow();
      });
    };
    // Times are formatted when pointed at: formatting thousands of them a second is what slowed a large fleet's page.
    this.body.onmouseover = (e) => {
      const td = e.target.closest('td[data-ts]');
      if (td) td.title = `at ${formatTime(Number(td.dataset.ts))}`;
    };
  }

  /**
   * Refreshes the rows in view of the given vehicles; without ids (every tick), the filter,
   * the order and every row in view, whose ages move with the clock.
   */
  render(ids) {
    if (ids === undefined || this.state.vehicles.size !== this.order.length + this.filteredOut) this.reorder();
    else {
      const now = Date.now();
      for (const id of ids) if (this.shownSet.has(id)) this.update(this.rows.get(id), this.state.vehicles.get(id), now);
    }
    setText(document.getElementById('vehicle-count'), `${this.state.vehicles.size}`);
  }

  sortBy(th) {
    this.descending = th.dataset.sort === this.sortKey ? !this.descending : false;
    this.sortKey = th.dataset.sort;
    for (const other of document.querySelectorAll('#vehicles th[data-sort]')) other.classList.remove('sorted', 'desc');
    th.classList.add('sorted');
    th.classList.toggle('desc', this.descending);
    this.reorder();
  }

  select(id) {
    this.selected = id;
    for (const shownId of this.shown) this.rows.get(shownId).tr.classList.toggle('selected', shownId === id);
  }

  /** Filters and sorts the whole fleet, then draws the rows in view. */
  reorder() {
    const text = this.filterText.value.trim().toLowerCase();
    const status = this.filterStatus.value;
    const keyed = [];
    for (const [id, v] of this.state.vehicles) {
      const shown =
        (!text || id.toLowerCase().includes(text)) &&
        (!status ||
          (status === 'online' && v.online) ||
          (status === 'offline' && !v.online) ||
          (status === 'alerting' && this.state.alertSummary(id).level !== null));
      if (shown) keyed.push({ id, key: this.sortValue(id) });
    }
    const sign = this.descending ? -1 : 1;
    // Plain comparisons, not localeCompare: sorting thousands of ids by locale takes tens of milliseconds.
    keyed.sort(({ id: a, key: ka }, { id: b, key: kb }) => {
      if (ka === kb) return a < b ? -1 : a > b ? 1 : 0;
      // Missing values sort last, whichever the direction.
      if (ka == null) return 1;
      if (kb == null) return -1;
      return (ka < kb ? -1 : 1) * sign;
    });
    this.order = keyed.map((k) => k.id);
    this.filteredOut = this.state.vehicles.size - this.order.length;
    this.renderWindow({ refresh: true });
  }

  /** Puts the rows in view into the document; `refresh` redraws those already there too. */
  renderWindow({ refresh = false } = {}) {
    const now = Date.now();
    const visible = Math.ceil(Math.max(this.scroller.clientHeight, innerHeight) / this.rowHeight);
    const first = Math.max(0, Math.min(Math.floor(this.scroller.scrollTop / this.rowHeight) - OVERSCAN, this.order.length - visible));
    const ids = this.order.slice(first, first + visible + 2 * OVERSCAN);
    for (const id of ids) {
      if (refresh || !this.shownSet.has(id)) this.update(this.row(id), this.state.vehicles.get(id), now);
    }
    if (ids.length !== this.shown.length || ids.some((id, i) => id !== this.shown[i])) {
      this.body.replaceChildren(...ids.map((id) => this.rows.get(id).tr));
      this.shown = ids;
      this.shownSet = new Set(ids);
    }
    if (!this.measured && ids.length > 0) {
      this.measured = true;
      this.rowHeight = this.body.firstElementChild.getBoundingClientRect().height || this.rowHeight;
    }
    this.body.style.paddingTop = `${first * this.rowHeight}px`;
    this.body.style.paddingBottom = `${(this.order.length - first - ids.length) * this.rowHeight}px`;
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
    r = { tr, cells };
    this.rows.set(id, r);
    return r;
  }

  update({ tr, cells }, v, now) {
    tr.classList.toggle('selected', v.id === this.selected);
    const status = v.online ? 'online' : 'offline';
    setText(cells.status, status);
    if (!cells.status.classList.contains(status)) cells.status.className = `status badge ${status}`;
    setText(cells.lastSeen, formatAgo(v.lastSeen, now));
    if (v.lastSeen != null && cells.lastSeen.dataset.ts !== String(v.lastSeen)) cells.lastSeen.dataset.ts = String(v.lastSeen);
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
