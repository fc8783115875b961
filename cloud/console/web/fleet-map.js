import * as L from '/vendor/leaflet/leaflet-src.esm.js';

/**
 * A new track point at most this often (as `/api/tracks` gives them): every point added
 * redraws the whole line, and 500 lines redrawn every fix would take the main thread.
 */
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
  markers = new Map();
  /** Vehicle id → { line, times }: the polyline and its points' event times, for trimming. */
  tracks = new Map();
  fitted = false;

  constructor(state, { tileUrl, tileAttribution, historyMs, onSelect }) {
    this.state = state;
    this.historyMs = historyMs;
    this.onSelect = onSelect;
    this.map = L.map('map', { center: [52.1, 5.1], zoom: 8, attributionControl: Boolean(tileUrl) });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution, maxZoom: 19 }).addTo(this.map);
    else new PlainGrid().addTo(this.map);
    L.control.scale({ imperial: false }).addTo(this.map);
  }

  /** Whole tracks, as `/api/tracks` gives them: `{ vehicle: [[lat, lon, ts], …] }`. */
  setTracks(tracks) {
    for (const [id, points] of Object.entries(tracks)) {
      const track = this.track(id);
      track.line.setLatLngs(points.map(([lat, lon]) => [lat, lon]));
      track.times = points.map((p) => p[2]);
    }
  }

  render(ids = this.state.vehicles.keys()) {
    for (const id of ids) this.update(id);
    if (!this.fitted && this.markers.size > 0) {
      this.fitted = true;
      const bounds = L.latLngBounds([...this.markers.values()].map((m) => m.getLatLng()));
      this.map.fitBounds(bounds.pad(0.1), { maxZoom: 14 });
    }
  }

  /** Drops track points older than the history window. */
  trim(now) {
    for (const track of this.tracks.values()) {
      const keep = track.times.findIndex((t) => t >= now - this.historyMs);
      if (keep === 0) continue;
      const drop = keep < 0 ? track.times.length : keep;
      track.times.splice(0, drop);
      track.line.setLatLngs(track.line.getLatLngs().slice(drop));
    }
  }

  update(id) {
    const v = this.state.vehicles.get(id);
    const gps = v.values.gps;
    if (gps?.lat == null) return;
    const latLng = [gps.lat, gps.lon];
    let marker = this.markers.get(id);
    if (!marker) {
      marker = L.circleMarker(latLng, { radius: 7, className: 'vehicle-marker', bubblingMouseEvents: false });
      marker.bindTooltip(id);
      marker.on('click', () => this.onSelect(id));
      marker.addTo(this.map);
      marker.getElement().dataset.vehicle = id;
      this.markers.set(id, marker);
    } else {
      marker.setLatLng(latLng);
    }
    const level = v.online ? (this.state.alertSummary(id).level ?? 'ok') : 'offline';
    const element = marker.getElement();
    if (element.dataset.level !== level) {
      element.dataset.level = level;
      element.setAttribute('class', `leaflet-interactive vehicle-marker ${level}`);
      this.track(id)
        .line.getElement()
        ?.classList.toggle('critical', level === 'critical');
    }
    const track = this.track(id);
    if (track.times.length === 0 || gps.ts - track.times.at(-1) >= TRACK_STEP_MS) {
      track.line.addLatLng(latLng);
      track.times.push(gps.ts);
    }
  }

  track(id) {
    let track = this.tracks.get(id);
    if (!track) {
      track = { line: L.polyline([], { className: 'vehicle-track', interactive: false }).addTo(this.map), times: [] };
      this.tracks.set(id, track);
    }
    return track;
  }
}
