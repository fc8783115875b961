// Small DOM and formatting helpers shared by the page's modules.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

export function formatTime(ts) {
  if (ts == null) return '–';
  const d = new Date(ts);
  return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
}

export function formatAgo(ts, now = Date.now()) {
  if (ts == null) return '–';
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return formatTime(ts);
}

export function formatNumber(n) {
  return n == null ? '–' : Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** Sets a text only when it differs: with 500 rows refreshed every second, untouched nodes cost nothing. */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

let messageTimer;
export function showError(text) {
  const box = document.getElementById('message');
  box.textContent = text;
  box.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => (box.hidden = true), 8000);
}
