import * as L from '/vendor/leaflet/leaflet-src.esm.js';

const RADIUS = 7;
/** A marker on a moving truck is a small target: a click this close still hits it. */
const HIT_SLOP = 3;
/** Drawing order, loudest last so that it is on top where markers overlap. */
const LEVELS = ['offline', 'ok', 'acknowledged', 'info', 'warning', 'critical'];
const TRACK_ALPHA = 0.45;

/**
 * Vehicles and their tracks, drawn on two canvases over the map rather than as an SVG
 * element each: with thousands of vehicles, moving SVG elements cost a style, layout and
 * paint of every one of them. Markers, stamped from a sprite per level, are redrawn whole
 * in the frame after any moved (a few milliseconds for thousands); tracks only get their new
 * segments drawn, and are redrawn whole when points are trimmed, a colour changes or the
 * view moves. Clicks and hovers are hit-tested against what was drawn last.
 */
export const VehicleLayer = L.Layer.extend({
  initialize({ onSelect }) {
    this.onSelect = onSelect;
    /** Vehicle id → { id, latLng, level, xy, track: [latLng], trackXY }; xy are projected at `zoom`, latLng is null until positioned. */
    this.vehicles = new Map();
    this.drawnMarkers = [];
    this.segments = [];
    this.tracksDirty = true;
    this.markersDirty = true;
    this.zoom = null;
    this.colours = colours();
    this.sprites = Object.fromEntries(LEVELS.map((level) => [level, sprite(level, this.colours)]));
    this.tooltip = L.tooltip({ direction: 'top', offset: [0, -RADIUS] });
  },

  onAdd(map) {
    // Hidden while Leaflet animates a zoom; redrawn at the new zoom when it ends.
    this.trackCanvas = L.DomUtil.create('canvas', 'leaflet-zoom-hide vehicle-tracks', map.getPane('overlayPane'));
    this.markerCanvas = L.DomUtil.create('canvas', 'leaflet-zoom-hide vehicle-markers', map.getPane('overlayPane'));
    map.on('viewreset moveend resize', this.reset, this);
    map.on('click', this.click, this);
    map.on('mousemove', this.hover, this);
    map.on('mouseout', this.unhover, this);
    this.reset();
  },

  onRemove(map) {
    this.trackCanvas.remove();
    this.markerCanvas.remove();
    map.off('viewreset moveend resize', this.reset, this);
    map.off('click', this.click, this);
    map.off('mousemove', this.hover, this);
    map.off('mouseout', this.unhover, this);
  },

  /** Returns whether anything visible changed. */
  setVehicle(id, latLng, level) {
    const v = this.vehicle(id);
    if (v.latLng?.[0] === latLng[0] && v.latLng[1] === latLng[1] && v.level === level) return false;
    if ((v.level === 'critical') !== (level === 'critical')) this.tracksDirty = true;
    v.latLng = latLng;
    v.level = level;
    v.xy = null;
    this.markersDirty = true;
    return true;
  },

  setTrack(id, latLngs) {
    const v = this.vehicle(id);
    v.track = latLngs;
    v.trackXY = null;
    this.tracksDirty = true;
  },

  addTrackPoint(id, latLng) {
    const v = this.vehicle(id);
    v.track.push(latLng);
    if (v.trackXY) v.trackXY.push(this.project(latLng));
    if (v.track.length > 1) this.segments.push(v);
  },

  dropTrackPoints(id, count) {
    const v = this.vehicles.get(id);
    v.track.splice(0, count);
    v.trackXY?.splice(0, count);
    this.tracksDirty = true;
  },

  bounds() {
    return L.latLngBounds([...this.vehicles.values()].filter((v) => v.latLng).map((v) => v.latLng));
  },

  vehicle(id) {
    let v = this.vehicles.get(id);
    if (!v) this.vehicles.set(id, (v = { id, latLng: null, level: 'offline', xy: null, track: [], trackXY: null }));
    return v;
  },

  /** Draws what changed since the last call: meant to run in an animation frame. */
  flush() {
    if (!this._map) return;
    if (this.tracksDirty) this.drawTracks();
    else this.drawSegments();
    if (this.markersDirty) this.drawMarkers();
  },

  /** The markers as last drawn, in container pixels, with the colour on screen at their centre. */
  drawn() {
    const dpr = devicePixelRatio;
    const { width, height } = this.markerCanvas;
    const pixels = width && height ? this.markerCanvas.getContext('2d').getImageData(0, 0, width, height).data : [];
    return this.drawnMarkers.map(({ v, x, y }) => {
      const at = (Math.round(y * dpr) * width + Math.round(x * dpr)) * 4;
      const colour = `#${[0, 1, 2].map((i) => (pixels[at + i] ?? 0).toString(16).padStart(2, '0')).join('')}`;
      const p = this._map.layerPointToContainerPoint(this.topLeft.add([x, y]));
      return { id: v.id, level: v.level, x: p.x, y: p.y, colour };
    });
  },

  /** New canvas position and size for the map's view, everything redrawn. */
  reset() {
    const map = this._map;
    const size = map.getSize();
    this.topLeft = map.containerPointToLayerPoint([0, 0]).round();
    for (const canvas of [this.trackCanvas, this.markerCanvas]) {
      L.DomUtil.setPosition(canvas, this.topLeft);
      canvas.style.width = `${size.x}px`;
      canvas.style.height = `${size.y}px`;
      canvas.width = Math.round(size.x * devicePixelRatio);
      canvas.height = Math.round(size.y * devicePixelRatio);
      canvas.getContext('2d').setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
    }
    if (map.getZoom() !== this.zoom) {
      this.zoom = map.getZoom();
      for (const v of this.vehicles.values()) v.xy = v.trackXY = null;
    }
    this.origin = map.getPixelOrigin().add(this.topLeft);
    this.size = size;
    this.tracksDirty = this.markersDirty = true;
    this.flush();
  },

  project(latLng) {
    const p = this._map.project(latLng, this.zoom);
    return [p.x, p.y];
  },

  drawTracks() {
    const ctx = this.trackCanvas.getContext('2d');
    ctx.clearRect(0, 0, this.size.x, this.size.y);
    ctx.lineWidth = 2;
    ctx.lineJoin = ctx.lineCap = 'round';
    ctx.globalAlpha = TRACK_ALPHA;
    // One path per colour: thousands of strokes would cost more than the lines themselves.
    for (const critical of [false, true]) {
      ctx.beginPath();
      for (const v of this.vehicles.values()) {
        if (v.track.length < 2 || (v.level === 'critical') !== critical) continue;
        v.trackXY ??= v.track.map((p) => this.project(p));
        ctx.moveTo(v.trackXY[0][0] - this.origin.x, v.trackXY[0][1] - this.origin.y);
        for (let i = 1; i < v.trackXY.length; i++) ctx.lineTo(v.trackXY[i][0] - this.origin.x, v.trackXY[i][1] - this.origin.y);
      }
      ctx.strokeStyle = critical ? this.colours.critical : this.colours.track;
      ctx.stroke();
    }
    this.tracksDirty = false;
    this.segments = [];
  },

  drawSegments() {
    if (this.segments.length === 0) return;
    const ctx = this.trackCanvas.getContext('2d');
    for (const critical of [false, true]) {
      ctx.beginPath();
      for (const v of this.segments) {
        if ((v.level === 'critical') !== critical) continue;
        v.trackXY ??= v.track.map((p) => this.project(p));
        const [a, b] = v.trackXY.slice(-2);
        ctx.moveTo(a[0] - this.origin.x, a[1] - this.origin.y);
        ctx.lineTo(b[0] - this.origin.x, b[1] - this.origin.y);
      }
      ctx.strokeStyle = critical ? this.colours.critical : this.colours.track;
      ctx.stroke();
    }
    this.segments = [];
  },

  drawMarkers() {
    const ctx = this.markerCanvas.getContext('2d');
    const { x: w, y: h } = this.size;
    ctx.clearRect(0, 0, w, h);
    const byLevel = new Map(LEVELS.map((l) => [l, []]));
    for (const v of this.vehicles.values()) {
      if (!v.latLng) continue;
      v.xy ??= this.project(v.latLng);
      const x = v.xy[0] - this.origin.x;
      const y = v.xy[1] - this.origin.y;
      if (x < -RADIUS || y < -RADIUS || x > w + RADIUS || y > h + RADIUS) continue;
      byLevel.get(v.level).push({ v, x, y });
    }
    this.drawnMarkers = [];
    for (const [level, markers] of byLevel) {
      const sprite = this.sprites[level];
      const half = sprite.width / devicePixelRatio / 2;
      for (const { x, y } of markers) ctx.drawImage(sprite, Math.round(x - half), Math.round(y - half), half * 2, half * 2);
      this.drawnMarkers.push(...markers);
    }
    this.markersDirty = false;
  },

  /** The topmost marker under a container point, if any. */
  hit(containerPoint) {
    const p = this._map.containerPointToLayerPoint(containerPoint).subtract(this.topLeft);
    for (let i = this.drawnMarkers.length - 1; i >= 0; i--) {
      const { v, x, y } = this.drawnMarkers[i];
      if ((x - p.x) ** 2 + (y - p.y) ** 2 <= (RADIUS + HIT_SLOP) ** 2) return v;
    }
    return undefined;
  },

  click(e) {
    const v = this.hit(e.containerPoint);
    if (v) this.onSelect(v.id);
  },

  hover(e) {
    const v = this.hit(e.containerPoint);
    this._map.getContainer().classList.toggle('over-vehicle', Boolean(v));
    if (!v) return this.unhover();
    this.tooltip.setContent(v.id);
    this._map.openTooltip(this.tooltip, v.latLng);
  },

  unhover() {
    this._map.closeTooltip(this.tooltip);
  },
});

/**
 * A marker drawn once per level and stamped for every vehicle: rasterising thousands of
 * anti-aliased circles every frame is what took a large fleet's frames, copying a bitmap is not.
 */
function sprite(level, colours) {
  const ring = level === 'critical' ? 3 : 2;
  const size = 2 * (RADIUS + ring);
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = Math.ceil(size * devicePixelRatio);
  const ctx = canvas.getContext('2d');
  ctx.scale(devicePixelRatio, devicePixelRatio);
  ctx.arc(size / 2, size / 2, RADIUS, 0, 2 * Math.PI);
  ctx.fillStyle = colours[level];
  ctx.fill();
  // A critical vehicle stands out by its ring as well as its colour.
  ctx.lineWidth = ring;
  ctx.strokeStyle = level === 'critical' ? colours.criticalRing : '#fff';
  ctx.stroke();
  return canvas;
}

/** The page's colours, from its style sheet, so the map and the tables say the same thing. */
function colours() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(`--${name}`).trim();
  return {
    offline: v('off'),
    ok: v('ok'),
    acknowledged: v('acked'),
    info: v('info'),
    warning: v('warning'),
    critical: v('critical'),
    criticalRing: v('critical-ring'),
    track: v('track'),
  };
}
