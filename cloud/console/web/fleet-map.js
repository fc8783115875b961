import * as L from '/vendor/leaflet/leaflet-src.esm.js';
import { VehicleLayer } from './vehicle-layer.js';

/** A new track point at most this often, as `/api/tracks` gives them: a track is a trace, not a log of fixes. */
const TRACK_STEP_MS = 10_000;

/**
 * Tile borders drawn on the client: with no tile server configured (most depots have no
 * internet) the map is still a map, with a grid and a scale to judge distances by.
 */
const PlainGrid = L.GridLayer.extend({
  createTile() {
    const size = this.getTileSize();
    const tile = document.createElement('canvas');
    tile.width = size.x;
    tile.height = size.y;
    const ctx = tile.getContext('2d');
    ctx.strokeStyle = '#d5dbe3';
    ctx.strokeRect(0.5, 0.5, size.x, size.y);
    return tile;
  },
});

/** Vehicle positions, their last minutes of track, and their alert state as marker colour. */
export class FleetMap {
  /** Vehicle id → the event times of its track's points, for trimming. */
  trackTimes = new Map();
  drawListeners = new Set();
  fitted = false;

  constructor(state, { tileUrl, tileAttribution, historyMs, onSelect }) {
    this.state = state;
    this.historyMs = historyMs;
    this.map = L.map('map', { center: [52.1, 5.1], zoom: 8, attributionControl: Boolean(tileUrl) });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution, maxZoom: 19 }).addTo(this.map);
    else new PlainGrid().addTo(this.map);
    L.control.scale({ imperial: false }).addTo(this.map);
    this.layer = new VehicleLayer({ onSelect }).addTo(this.map);
  }

  /** Whole tracks, as `/api/tracks` gives them: `{ vehicle: [[lat, lon, ts], …] }`. */
  setTracks(tracks) {
    for (const [id, points] of Object.entries(tracks)) {
      this.layer.setTrack(
        id,
        points.map(([lat, lon]) => [lat, lon]),
      );
      this.trackTimes.set(
        id,
        points.map((p) => p[2]),
      );
    }
  }

  /** Draws the given vehicles' changes (all when omitted): meant to run in an animation frame. */
  render(ids = this.state.vehicles.keys()) {
    const changed = [];
    for (const id of ids) if (this.update(id)) changed.push(id);
    if (!this.fitted && changed.length > 0) {
      this.fitted = true;
      this.map.fitBounds(this.layer.bounds().pad(0.1), { maxZoom: 14 });
    }
    this.layer.flush();
    if (changed.length > 0 && this.drawListeners.size > 0) {
      const drawn = changed.map((id) => ({ id, ts: this.state.vehicles.get(id).values.gps.ts }));
      for (const listener of this.drawListeners) listener(drawn);
    }
  }

  /** Drops track points older than the history window. */
  trim(now) {
    for (const [id, times] of this.trackTimes) {
      const keep = times.findIndex((t) => t >= now - this.historyMs);
      if (keep === 0) continue;
      const drop = keep < 0 ? times.length : keep;
      times.splice(0, drop);
      this.layer.dropTrackPoints(id, drop);
    }
    this.layer.flush();
  }

  /** Returns whether the vehicle's marker changed. */
  update(id) {
    // An alert may name a vehicle whose values have not arrived yet.
    const v = this.state.vehicles.get(id);
    const gps = v?.values.gps;
    if (gps?.lat == null) return false;
    const latLng = [gps.lat, gps.lon];
    const level = v.online ? (this.state.alertSummary(id).level ?? 'ok') : 'offline';
    const changed = this.layer.setVehicle(id, latLng, level);
    let times = this.trackTimes.get(id);
    if (!times) this.trackTimes.set(id, (times = []));
    if (times.length === 0 || gps.ts - times.at(-1) >= TRACK_STEP_MS) {
      this.layer.addTrackPoint(id, latLng);
      times.push(gps.ts);
    }
    return changed;
  }

  /**
   * What the map shows, for the page's tests and benchmark (the markers are pixels, not
   * elements): the markers as drawn, and a listener told of every vehicle drawn anew.
   */
  inspector() {
    return {
      vehicles: () => this.layer.drawn(),
      onDraw: (listener) => this.drawListeners.add(listener),
    };
  }
}
