import { timingSafeEqual } from 'node:crypto';

/** Compared in constant time, so how long a refusal takes reveals nothing of the secret. */
export function sameSecret(given: string | Buffer, expected: string | Buffer): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  // timingSafeEqual needs equal lengths; on a mismatch compare the secret with itself so the time is the same.
  return timingSafeEqual(a.length === b.length ? a : b, b) && a.length === b.length;
}
