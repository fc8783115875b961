import { el, formatNumber, formatTime } from './format.js';

/** Cells shared by the live feed and a vehicle's alert history. */
export function alertCells(a, { withVehicle, onVehicle }) {
  const source = a.live ? 'live' : 'historical';
  const observed = el('td', {
    className: 'num',
    textContent: `${formatNumber(a.observed)} vs ${formatNumber(a.expected)}`,
    title: a.message,
  });
  const vehicle = el('a', { href: '#', className: 'vehicle', textContent: a.vehicle });
  vehicle.onclick = (e) => {
    e.preventDefault();
    onVehicle?.(a.vehicle);
  };
  return [
    el('td', { textContent: formatTime(a.raisedAt), title: `window ${formatTime(a.windowStart)} – ${formatTime(a.windowEnd)}` }),
    el('td', {}, el('span', { className: `badge ${a.severity}`, textContent: a.severity })),
    ...(withVehicle ? [el('td', {}, vehicle)] : []),
    el('td', { textContent: a.rule }),
    observed,
    el('td', { className: source, textContent: source }),
    el('td', {}, el('span', { className: `state ${a.state}`, textContent: a.state }), who(a)),
  ];
}

/** Who moved the alert along, and when: the lifecycle's audit trail at a glance. */
function who(a) {
  const parts = [];
  if (a.ackedBy) parts.push(`acked by ${a.ackedBy} ${formatTime(a.ackedAt)}`);
  if (a.clearedBy) parts.push(`cleared by ${a.clearedBy} ${formatTime(a.clearedAt)}`);
  return parts.length ? el('div', { className: 'by', textContent: parts.join(' · ') }) : '';
}
