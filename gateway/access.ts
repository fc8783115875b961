import { parseTopic, TOPIC_ROOT, type ParsedTopic } from '../shared/contract/topics.js';

/**
 * Cloud-side parts connect as services, each with the rights its job needs and no more:
 * `dispatcher` (the detector or dispatcher's driver channel) sends alerts down to cabs and
 * follows their status and acknowledgements; `console` follows every vehicle's status and alerts.
 */
export const SERVICE_ROLES = ['dispatcher', 'console'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

export type Identity = { kind: 'vehicle'; vehicle: string } | { kind: 'service'; role: ServiceRole };

export const isServiceRole = (name: string | undefined): name is ServiceRole => SERVICE_ROLES.includes(name as ServiceRole);

/** Why a publish or subscription is outside an identity's rights; the metric label and log line say the same. */
export type AccessRefusal = 'foreign_topic' | 'unknown_topic' | 'downlink_topic' | 'service_denied';

export type AccessDecision = { ok: true } | { ok: false; reason: AccessRefusal; detail: string };

const ALLOW: AccessDecision = { ok: true };

/**
 * A vehicle publishes its own telemetry, status and alert acknowledgements; a dispatcher
 * publishes alerts to any cab; a console publishes nothing. `t` is `topic` parsed, which the
 * caller needs too.
 */
export function mayPublish(who: Identity, topic: string, t: ParsedTopic | undefined): AccessDecision {
  if (who.kind === 'service') {
    if (who.role === 'dispatcher' && t?.kind === 'alerts') return ALLOW;
    return { ok: false, reason: 'service_denied', detail: `service ${who.role} may not publish on ${topic}` };
  }
  if (!t) return { ok: false, reason: 'unknown_topic', detail: `topic ${topic} is not a fleet topic` };
  if (t.vehicle !== who.vehicle)
    return { ok: false, reason: 'foreign_topic', detail: `vehicle ${who.vehicle} may not publish under ${t.vehicle}` };
  if (t.kind === 'alerts' || t.kind === 'rejected') return { ok: false, reason: 'downlink_topic', detail: `${t.kind} is a downlink topic` };
  return ALLOW;
}

/**
 * A vehicle follows its own alerts and rejections; a console follows every vehicle's status
 * and alerts, a dispatcher every vehicle's status and alert acknowledgements (`+` allowed).
 */
export function maySubscribe(who: Identity, filter: string): AccessDecision {
  if (who.kind === 'service') {
    if (SERVICE_FILTERS[who.role].test(filter)) return ALLOW;
    return { ok: false, reason: 'service_denied', detail: `service ${who.role} may not subscribe to ${filter}` };
  }
  const t = parseTopic(filter);
  if (t && t.vehicle === who.vehicle && (t.kind === 'alerts' || t.kind === 'rejected')) return ALLOW;
  return { ok: false, reason: 'foreign_topic', detail: `vehicle ${who.vehicle} may only follow its own alerts, not ${filter}` };
}

const serviceFilter = (kinds: string) => new RegExp(`^${TOPIC_ROOT.replace('/', '\\/')}\\/(\\+|[A-Za-z0-9_-]{1,64})\\/(${kinds})$`);
const SERVICE_FILTERS: Record<ServiceRole, RegExp> = {
  console: serviceFilter('status|alerts'),
  dispatcher: serviceFilter('status|alert-acks'),
};
