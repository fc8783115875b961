import { alertCells } from './alert-cells.js';
import { el } from './format.js';

const CUE_MS = 8000;

/**
 * The live alert feed: one row per alert id (an episode), newest first, updated in place
 * however often and by whatever path the alert arrives; filtered by state and severity.
 * A new critical alert flashes its row, shows a banner and, if enabled, beeps.
 */
export class AlertFeed {
  rows = new Map();

  constructor(state, { onAction, onVehicle }) {
    this.state = state;
    this.onAction = onAction;
    this.onVehicle = onVehicle;
    this.body = document.querySelector('#alerts tbody');
    this.stateFilter = document.getElementById('alert-state');
    this.severityFilter = document.getElementById('alert-severity');
    this.stateFilter.onchange = this.severityFilter.onchange = () => this.applyFilter();
    this.sound = document.getElementById('sound');
    this.sound.checked = localStorage.getItem('fleet-console-sound') === 'on';
    this.sound.onchange = () => localStorage.setItem('fleet-console-sound', this.sound.checked ? 'on' : 'off');
  }

  /** Draws an alert the state accepted; `live` marks one that just happened rather than one loaded. */
  show(alert, { live = false } = {}) {
    let tr = this.rows.get(alert.id);
    if (!tr) {
      tr = el('tr');
      tr.dataset.alertId = alert.id;
      tr.dataset.raisedAt = String(alert.raisedAt);
      this.insertByTime(tr, alert.raisedAt);
      this.rows.set(alert.id, tr);
      if (live && alert.severity === 'critical' && alert.state === 'active') this.cue(tr, alert);
    }
    tr.dataset.state = alert.state;
    tr.dataset.severity = alert.severity;
    tr.classList.toggle('cleared', alert.state === 'cleared');
    tr.replaceChildren(
      ...alertCells(alert, { withVehicle: true, onVehicle: this.onVehicle }),
      el(
        'td',
        {},
        this.button('Ack', alert, 'ack', alert.state === 'active'),
        this.button('Clear', alert, 'clear', alert.state !== 'cleared'),
      ),
    );
    this.filter(tr);
  }

  applyFilter() {
    for (const tr of this.rows.values()) this.filter(tr);
  }

  filter(tr) {
    const state = this.stateFilter.value;
    const severity = this.severityFilter.value;
    tr.hidden = (state !== '' && tr.dataset.state !== state) || (severity !== '' && tr.dataset.severity !== severity);
  }

  button(label, alert, action, enabled) {
    return el('button', {
      type: 'button',
      textContent: label,
      disabled: !enabled,
      className: action,
      onclick: () => this.onAction(alert.id, action),
    });
  }

  /** Keeps the feed newest first, whatever order alerts arrive in. */
  insertByTime(tr, raisedAt) {
    const later = [...this.body.children].find((r) => Number(r.dataset.raisedAt) < raisedAt);
    this.body.insertBefore(tr, later ?? null);
  }

  cue(tr, alert) {
    tr.classList.add('flash');
    const banner = document.getElementById('cue');
    banner.textContent = `New critical alert: ${alert.vehicle} ${alert.rule} (${alert.message})`;
    banner.hidden = false;
    clearTimeout(this.cueTimer);
    this.cueTimer = setTimeout(() => (banner.hidden = true), CUE_MS);
    if (this.sound.checked) beep();
  }
}

/** Two short tones from WebAudio: no sound file to serve, nothing to fetch. */
function beep() {
  const audio = new AudioContext();
  for (const [at, freq] of [
    [0, 880],
    [0.25, 660],
  ]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(audio.destination);
    osc.start(audio.currentTime + at);
    osc.stop(audio.currentTime + at + 0.18);
  }
  setTimeout(() => audio.close(), 1000);
}
