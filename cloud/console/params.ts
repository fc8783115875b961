import { ALERT_STATES, SEVERITIES } from '../../shared/contract/alert.js';
import { VEHICLE_ID } from '../../shared/contract/reading.js';
import type { AlertFilter } from '../store.js';
import { HttpError } from './http.js';

const MAX_LIMIT = 1000;
const MAX_NAME_LENGTH = 64;
const MAX_SECRET_LENGTH = 256;
const DEFAULT_ACTOR = 'console';

const FILTER_KEYS = ['state', 'severity', 'vehicle', 'limit'] as const;

/**
 * The query of `GET /api/alerts`. An empty value means "any", as an HTML form sends it;
 * an unknown key is refused, so a typo like `status=` does not silently return everything.
 */
export function parseAlertFilter(query: URLSearchParams): AlertFilter {
  const filter: AlertFilter = {};
  for (const key of new Set(query.keys())) {
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      throw new HttpError(400, `${key}: unknown parameter; use ${FILTER_KEYS.join(', ')}`);
    }
    const values = query.getAll(key);
    if (values.length > 1) throw new HttpError(400, `${key}: give it at most once`);
    const value = values[0]!;
    if (value === '') continue;
    if (key === 'state') filter.state = oneOf(value, ALERT_STATES, key);
    else if (key === 'severity') filter.severity = oneOf(value, SEVERITIES, key);
    else if (key === 'vehicle') filter.vehicle = vehicleId(value);
    else filter.limit = limit(value);
  }
  return filter;
}

/** Who acknowledges or clears, from the optional body `{ "by": "name" }` of a bearer-token request. */
export function parseActor(body: unknown): string {
  if (body === undefined) return DEFAULT_ACTOR;
  const { by } = objectWith(body, ['by'], '{"by": "name"}');
  return by === undefined ? DEFAULT_ACTOR : name(by, 'by');
}

/** The sign-in body `{ "user": "name", "password": "…" }`; the password may be the console token. */
export function parseSignIn(body: unknown): { user: string; password: string } {
  const { user, password } = objectWith(body, ['user', 'password'], '{"user": "name", "password": "secret"}');
  if (typeof password !== 'string' || password === '' || password.length > MAX_SECRET_LENGTH) {
    throw new HttpError(400, `password: must be a string of 1 to ${MAX_SECRET_LENGTH} characters`);
  }
  return { user: name(user, 'user'), password };
}

/** A vehicle id from the path. */
export function parseVehicle(value: string): string {
  return vehicleId(value);
}

function objectWith(body: unknown, fields: string[], example: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, `body: must be a JSON object like ${example}`);
  const unknown = Object.keys(body).filter((k) => !fields.includes(k));
  if (unknown.length > 0)
    throw new HttpError(400, `body: unknown field ${unknown[0]}; only ${fields.map((f) => `"${f}"`).join(', ')} accepted`);
  return body as Record<string, unknown>;
}

function name(value: unknown, field: string): string {
  // Control characters would let a name forge extra lines in logs and garble the page.
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(value)) {
    throw new HttpError(400, `${field}: must be a name of 1 to ${MAX_NAME_LENGTH} printable characters`);
  }
  return value.trim();
}

function oneOf<T extends string>(value: string, allowed: readonly T[], key: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new HttpError(400, `${key}: must be one of ${allowed.join(', ')}`);
  return value as T;
}

function vehicleId(value: string): string {
  if (!VEHICLE_ID.test(value)) throw new HttpError(400, 'vehicle: must be 1-64 characters of A-Z a-z 0-9 _ -');
  return value;
}

function limit(value: string): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new HttpError(400, `limit: must be a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}
