/** Mean Earth radius (IUGG), m: over one fix to the next the sphere is within centimetres of the ellipsoid. */
const EARTH_RADIUS_M = 6_371_008.8;
/**
 * Below this a position's jitter (a metre or two between fixes) outweighs the movement, so the
 * direction between two fixes says nothing about where the truck points.
 */
const MIN_COURSE_KMH = 5;

export interface Position {
  lat: number;
  lon: number;
}

/**
 * Ground speed (km/h) and course (degrees true, when moving) from two positions `dtMs` apart:
 * what a receiver that sends no speed (GGA, GNS or GLL alone) still tells about the movement.
 * The average over the interval, not the receiver's Doppler speed of the moment.
 */
export function motionBetween(from: Position, to: Position, dtMs: number): { speedKmh: number; courseDeg?: number } {
  const rad = Math.PI / 180;
  const [lat1, lat2] = [from.lat * rad, to.lat * rad];
  const dLat = lat2 - lat1;
  const dLon = (to.lon - from.lon) * rad;
  // Haversine: exact for the short distances between fixes, where the law of cosines loses digits.
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1) * Math.cos(lat2) * Math.sin(dLon / 2) ** 2;
  const distanceM = 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
  const speedKmh = (distanceM / (dtMs / 1000)) * 3.6;
  if (speedKmh < MIN_COURSE_KMH) return { speedKmh };
  const y = Math.sin(dLon) * Math.cos(lat2);
  const x = Math.cos(lat1) * Math.sin(lat2) - Math.sin(lat1) * Math.cos(lat2) * Math.cos(dLon);
  return { speedKmh, courseDeg: (((Math.atan2(y, x) / rad) % 360) + 360) % 360 };
}
