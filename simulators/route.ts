import type { Random } from './random.js';

export interface Waypoint {
  lat: number;
  lon: number;
}

export interface RoutePoint extends Waypoint {
  /** Degrees clockwise from north, in [0, 360). */
  heading: number;
}

const EARTH_RADIUS_M = 6_371_000;
const M_PER_DEG_LAT = 111_320;
const rad = (deg: number) => (deg * Math.PI) / 180;
const deg = (r: number) => (r * 180) / Math.PI;

/** A closed loop of waypoints the truck drives round and round. */
export class Route {
  private readonly waypoints: readonly Waypoint[];
  /** Loop length in metres. */
  private readonly length: number;
  private readonly starts: number[] = [];

  constructor(waypoints: readonly Waypoint[]) {
    if (waypoints.length < 2) throw new RangeError('a route needs at least 2 waypoints');
    for (const p of waypoints) {
      if (!(Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180)) {
        throw new RangeError(`waypoint ${JSON.stringify(p)} is not a valid lat/lon`);
      }
    }
    this.waypoints = waypoints.map((p) => ({ lat: p.lat, lon: p.lon }));
    let total = 0;
    this.waypoints.forEach((p, i) => {
      this.starts.push(total);
      total += distanceM(p, this.next(i));
    });
    if (total === 0) throw new RangeError('route waypoints are all the same point');
    this.length = total;
  }

  /** Where a truck is after driving `distance` (>= 0) metres from the first waypoint. */
  at(distance: number): RoutePoint {
    const d = distance % this.length;
    let i = this.starts.length - 1;
    while (this.starts[i]! > d) i--;
    const a = this.waypoints[i]!;
    const b = this.next(i);
    // Linear in lat/lon is within metres of the great circle on segments of a few km.
    // (A zero-length segment is never picked: no d lies in its empty span.)
    const f = (d - this.starts[i]!) / distanceM(a, b);
    return { lat: a.lat + (b.lat - a.lat) * f, lon: a.lon + (b.lon - a.lon) * f, heading: bearing(a, b) };
  }

  private next(i: number): Waypoint {
    return this.waypoints[(i + 1) % this.waypoints.length]!;
  }
}

/**
 * A loop of 6–10 waypoints 8–25 km around a base point in central Europe (France to Poland),
 * ordered by angle so the loop does not cross itself.
 */
export function generateRoute(rng: Random): Route {
  const base = { lat: rng.uniform(46, 52), lon: rng.uniform(2, 20) };
  const radiusKm = rng.uniform(8, 25);
  const n = rng.int(6, 10);
  const points: Waypoint[] = [];
  for (let i = 0; i < n; i++) {
    const angle = ((i + rng.uniform(-0.3, 0.3)) / n) * 2 * Math.PI;
    const r = radiusKm * 1000 * rng.uniform(0.7, 1.3);
    points.push({
      lat: base.lat + (r * Math.cos(angle)) / M_PER_DEG_LAT,
      lon: base.lon + (r * Math.sin(angle)) / (M_PER_DEG_LAT * Math.cos(rad(base.lat))),
    });
  }
  return new Route(points);
}

function distanceM(a: Waypoint, b: Waypoint): number {
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

function bearing(a: Waypoint, b: Waypoint): number {
  const y = Math.sin(rad(b.lon - a.lon)) * Math.cos(rad(b.lat));
  const x = Math.cos(rad(a.lat)) * Math.sin(rad(b.lat)) - Math.sin(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.cos(rad(b.lon - a.lon));
  return (deg(Math.atan2(y, x)) + 360) % 360;
}
