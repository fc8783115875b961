import { AlertFeed } from './alert-feed.js';
import { getJson, postJson, UnauthorizedError } from './api.js';
import { FleetMap } from './fleet-map.js';
import { FleetState } from './fleet-state.js';
import { setText, showError } from './format.js';
import { showUser, signIn, wireSignOut } from './sign-in.js';
import { VehicleDetail } from './vehicle-detail.js';
import { VehiclesTable } from './vehicles-table.js';

const TICK_MS = 1000;
const STATS_MS = 5000;
const TRIM_MS = 10_000;
const RECONNECT_MS = 2000;

const config = await getJson('/api/config');
showUser(config.user);
wireSignOut();
if (!config.user && !config.publicReads) showUser(await signIn());

const state = new FleetState();
const table = new VehiclesTable(state, { staleAfterMs: config.staleAfterMs, onSelect: select });
const map = new FleetMap(state, { ...config, onSelect: select });
const feed = new AlertFeed(state, { onAction: act, onVehicle: select });
const detail = new VehicleDetail(state, { ...config, onShowError: showError });

// ---- rendering: live events mark vehicles dirty, one animation frame draws them all ----

const dirty = new Set();
let frameAsked = false;

function markDirty(ids) {
  for (const id of ids) dirty.add(id);
  if (frameAsked) return;
  frameAsked = true;
  requestAnimationFrame(() => {
    frameAsked = false;
    const ids = [...dirty];
    dirty.clear();
    table.render(ids);
    map.render(ids);
    detail.extend(ids);
  });
}

/** Work of the clock, drawn in a frame of its own. */
function everyFrameOf(ms, fn) {
  setInterval(() => requestAnimationFrame(fn), ms);
}

function applyAlert(alert, { live = false } = {}) {
  if (!state.upsertAlert(alert)) return;
  feed.show(alert, { live });
  markDirty([alert.vehicle]);
  detail.alertChanged(alert);
}

function select(id) {
  table.select(id);
  detail.open(id);
}

// ---- loading, and the sign-in it may need ----

/** Runs `fn`, asking for a sign-in first whenever the console says we need one. */
async function signedIn(fn) {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      showUser(await signIn());
    }
  }
}

let tracksLoaded = false;
/** Everything the live stream does not replay: run at start and after every reconnect, so nothing missed while away is lost. */
async function reload() {
  const [vehicles, active, acknowledged, recent, tracks] = await signedIn(() =>
    Promise.all([
      getJson('/api/vehicles'),
      getJson('/api/alerts?state=active&limit=1000'),
      getJson('/api/alerts?state=acknowledged&limit=1000'),
      getJson('/api/alerts?limit=200'),
      tracksLoaded ? undefined : getJson('/api/tracks'),
    ]),
  );
  if (tracks) {
    map.setTracks(tracks);
    tracksLoaded = true;
  }
  for (const alert of [...active, ...acknowledged, ...recent]) applyAlert(alert);
  markDirty(state.setVehicles(vehicles));
}

async function act(id, action) {
  try {
    applyAlert(await signedIn(() => postJson(`/api/alerts/${encodeURIComponent(id)}/${action}`)));
  } catch (err) {
    showError(`${action === 'ack' ? 'Acknowledge' : 'Clear'} failed: ${err.message}`);
  }
}

async function refreshStats() {
  try {
    const s = await getJson('/api/stats');
    setText(
      document.getElementById('stats'),
      `${s.readingsStored} readings · ${s.alerts.active} active, ${s.alerts.acknowledged} acknowledged alerts`,
    );
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) showError(`Stats: ${err.message}`);
  }
}

// ---- live updates ----

function setLink(live) {
  const badge = document.getElementById('link');
  badge.textContent = live ? 'live' : 'reconnecting';
  badge.className = `badge ${live ? 'online' : 'offline'}`;
}

function connectEvents() {
  const events = new EventSource('/api/events');
  events.addEventListener('hello', () => {
    setLink(true);
    reload().catch((err) => showError(`Loading: ${err.message}`));
  });
  events.addEventListener('alert', (e) => {
    applyAlert(JSON.parse(e.data), { live: true });
    refreshStats();
  });
  events.addEventListener('values', (e) => markDirty(state.applyValues(JSON.parse(e.data))));
  events.addEventListener('status', (e) => {
    const update = JSON.parse(e.data);
    state.applyStatus(update);
    markDirty([update.vehicle]);
  });
  events.onerror = () => {
    setLink(false);
    // The browser retries a dropped stream by itself, but not one that was refused (a lost sign-in).
    if (events.readyState !== EventSource.CLOSED) return;
    setTimeout(() => signedIn(() => getJson('/api/stats')).then(connectEvents, connectEvents), RECONNECT_MS);
  };
}

connectEvents();
refreshStats();
setInterval(refreshStats, STATS_MS);
// Ages and staleness move with the clock, not only with new readings.
everyFrameOf(TICK_MS, () => table.render());
everyFrameOf(TRIM_MS, () => map.trim(Date.now()));
// The markers are pixels, not elements: the page's tests and benchmark ask the map what it drew.
window.fleetMap = map.inspector();
