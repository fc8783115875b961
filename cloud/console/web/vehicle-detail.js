import uPlot from '/vendor/uplot/uPlot.esm.js';
import { getJson } from './api.js';
import { alertCells } from './alert-cells.js';
import { el } from './format.js';

const CHARTS = [
  { sensor: 'engine_temp', title: 'Engine temperature', unit: '°C', stroke: '#c2410c' },
  { sensor: 'container_temp', title: 'Cargo temperature', unit: '°C', stroke: '#0369a1' },
  { sensor: 'speed', title: 'Speed', unit: 'km/h', stroke: '#15803d' },
];

/**
 * One vehicle's last minutes: a chart per sensor with the rules' thresholds drawn as
 * dashed lines (the y range always reaches them, so the distance to a limit is visible),
 * and the vehicle's alert history. Live values extend the charts while it is open.
 */
export class VehicleDetail {
  vehicle = null;
  charts = new Map();

  constructor(state, { rules, historyMs, onShowError }) {
    this.state = state;
    this.historyMs = historyMs;
    this.onShowError = onShowError;
    this.thresholds = thresholdsBySensor(rules);
    this.section = document.getElementById('detail');
    document.getElementById('detail-close').onclick = () => this.close();
  }

  async open(id) {
    this.vehicle = id;
    this.section.hidden = false;
    document.getElementById('detail-id').textContent = id;
    try {
      const [series, alerts] = await Promise.all([
        getJson(`/api/vehicles/${encodeURIComponent(id)}/series`),
        getJson(`/api/alerts?vehicle=${encodeURIComponent(id)}&limit=100`),
      ]);
      if (this.vehicle !== id) return;
      this.drawCharts(series);
      this.drawAlerts(alerts);
      this.section.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    } catch (err) {
      this.onShowError(`Vehicle ${id}: ${err.message}`);
    }
  }

  close() {
    this.vehicle = null;
    this.section.hidden = true;
    for (const chart of this.charts.values()) chart.plot.destroy();
    this.charts.clear();
  }

  /** New live values of the open vehicle extend its charts. */
  extend(ids) {
    if (this.vehicle === null || !ids.includes(this.vehicle)) return;
    const values = this.state.vehicles.get(this.vehicle).values;
    const cutoff = (Date.now() - this.historyMs) / 1000;
    for (const [sensor, chart] of this.charts) {
      const v = values[sensor];
      const [xs, ys] = chart.data;
      if (!v || (xs.length > 0 && v.ts / 1000 <= xs.at(-1))) continue;
      xs.push(v.ts / 1000);
      ys.push(v.value);
      while (xs.length > 0 && xs[0] < cutoff) {
        xs.shift();
        ys.shift();
      }
      chart.plot.setData(chart.data);
    }
  }

  /** An alert of the open vehicle changed: its history is reloaded (small, and rare). */
  async alertChanged(alert) {
    if (alert.vehicle !== this.vehicle) return;
    const alerts = await getJson(`/api/alerts?vehicle=${encodeURIComponent(alert.vehicle)}&limit=100`).catch(() => undefined);
    if (alerts && this.vehicle === alert.vehicle) this.drawAlerts(alerts);
  }

  drawCharts(series) {
    for (const chart of this.charts.values()) chart.plot.destroy();
    this.charts.clear();
    const box = document.getElementById('charts');
    box.replaceChildren();
    const width = Math.max(320, Math.floor((box.clientWidth - 24) / CHARTS.length));
    for (const spec of CHARTS) {
      const holder = el('div', { className: 'chart' }, el('h4', { textContent: `${spec.title} (${spec.unit})` }));
      holder.dataset.sensor = spec.sensor;
      box.append(holder);
      const [ts, values] = series[spec.sensor];
      const data = [ts.map((t) => t / 1000), values];
      const lines = this.thresholds.get(spec.sensor) ?? [];
      const plot = new uPlot(chartOptions(spec, lines, width), data, holder);
      this.charts.set(spec.sensor, { plot, data });
    }
  }

  drawAlerts(alerts) {
    const body = document.querySelector('#detail-alerts tbody');
    body.replaceChildren(
      ...(alerts.length
        ? alerts.map((a) => {
            const tr = el('tr', {}, ...alertCells(a, { withVehicle: false }));
            tr.dataset.alertId = a.id;
            return tr;
          })
        : [el('tr', {}, el('td', { colSpan: 6, className: 'empty', textContent: 'No alerts' }))]),
    );
  }
}

function thresholdsBySensor(rules) {
  const out = new Map();
  for (const r of rules) {
    if (r.type !== 'threshold') continue;
    for (const [bound, value] of [
      ['above', r.above],
      ['below', r.below],
    ]) {
      if (value === undefined) continue;
      out.set(r.sensor, [...(out.get(r.sensor) ?? []), { value, label: `${r.name} ${bound} ${value}`, severity: r.severity }]);
    }
  }
  return out;
}

function chartOptions(spec, lines, width) {
  return {
    width,
    height: 200,
    legend: { show: false },
    scales: {
      x: { time: true },
      y: {
        range: (_u, min, max) => {
          const lo = Math.min(min ?? 0, ...lines.map((l) => l.value));
          const hi = Math.max(max ?? 1, ...lines.map((l) => l.value));
          const pad = Math.max(1, (hi - lo) * 0.1);
          return [lo - pad, hi + pad];
        },
      },
    },
    axes: [{}, { label: spec.unit, size: 50 }],
    series: [{}, { label: spec.title, stroke: spec.stroke, width: 1.5, points: { show: false } }],
    hooks: { draw: [(u) => drawThresholds(u, lines)] },
  };
}

function drawThresholds(u, lines) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = 1.5 * devicePixelRatio;
  ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
  // uPlot leaves the axis labels' right alignment on the context.
  ctx.textAlign = 'left';
  ctx.textBaseline = 'bottom';
  for (const line of lines) {
    const y = Math.round(u.valToPos(line.value, 'y', true));
    ctx.strokeStyle = ctx.fillStyle = line.severity === 'critical' ? '#c62828' : '#b45309';
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    ctx.fillText(line.label, bbox.left + 4 * devicePixelRatio, y - 4 * devicePixelRatio);
  }
  ctx.restore();
}
