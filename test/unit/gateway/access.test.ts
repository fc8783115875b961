import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import {
  isServiceRole,
  mayPublish,
  maySubscribe,
  type AccessDecision,
  type AccessRefusal,
  type Identity,
} from '../../../gateway/access.js';
import { parseTopic } from '../../../shared/contract/topics.js';

const truck: Identity = { kind: 'vehicle', vehicle: 'truck-1' };
const dispatcher: Identity = { kind: 'service', role: 'dispatcher' };
const consoleService: Identity = { kind: 'service', role: 'console' };
const who = { truck, dispatcher, console: consoleService };

/** Allowed, or refused with this reason and a detail matching this pattern. */
type Expect = 'allow' | [AccessRefusal, RegExp];

const check = (decision: AccessDecision, expected: Expect, what: string) => {
  if (expected === 'allow') return assert.deepEqual(decision, { ok: true }, what);
  assert.equal(decision.ok, false, `${what}: refused`);
  if (decision.ok) return;
  assert.equal(decision.reason, expected[0], what);
  assert.match(decision.detail, expected[1], what);
};

describe('who may publish what', () => {
  const table: [keyof typeof who, string, Expect][] = [
    // A vehicle: its own uplink topics only.
    ['truck', 'fleet/v1/truck-1/telemetry', 'allow'],
    ['truck', 'fleet/v1/truck-1/status', 'allow'],
    ['truck', 'fleet/v1/truck-1/alert-acks', 'allow'],
    ['truck', 'fleet/v1/truck-1/alerts', ['downlink_topic', /^alerts is a downlink topic$/]],
    ['truck', 'fleet/v1/truck-1/rejected', ['downlink_topic', /^rejected is a downlink topic$/]],
    ['truck', 'fleet/v1/truck-2/telemetry', ['foreign_topic', /^vehicle truck-1 may not publish under truck-2$/]],
    ['truck', 'fleet/v1/truck-2/status', ['foreign_topic', /truck-1 may not publish under truck-2/]],
    ['truck', 'fleet/v1/truck-2/alerts', ['foreign_topic', /truck-1 may not publish under truck-2/]],
    ['truck', 'fleet/v1/truck-1/other', ['unknown_topic', /^topic fleet\/v1\/truck-1\/other is not a fleet topic$/]],
    ['truck', 'fleet/v2/truck-1/telemetry', ['unknown_topic', /not a fleet topic/]],
    ['truck', 'fleet/v1/truck-1/telemetry/extra', ['unknown_topic', /not a fleet topic/]],
    ['truck', 'fleet/v1/truck 1/telemetry', ['unknown_topic', /not a fleet topic/]],
    ['truck', '$SYS/broker/uptime', ['unknown_topic', /not a fleet topic/]],
    ['truck', '', ['unknown_topic', /not a fleet topic/]],
    // The dispatcher: alerts down to any cab, nothing else.
    ['dispatcher', 'fleet/v1/truck-1/alerts', 'allow'],
    ['dispatcher', 'fleet/v1/truck-2/alerts', 'allow'],
    [
      'dispatcher',
      'fleet/v1/truck-1/telemetry',
      ['service_denied', /^service dispatcher may not publish on fleet\/v1\/truck-1\/telemetry$/],
    ],
    ['dispatcher', 'fleet/v1/truck-1/status', ['service_denied', /dispatcher may not publish/]],
    ['dispatcher', 'fleet/v1/truck-1/alert-acks', ['service_denied', /dispatcher may not publish/]],
    ['dispatcher', 'fleet/v1/truck-1/rejected', ['service_denied', /dispatcher may not publish/]],
    ['dispatcher', 'elsewhere', ['service_denied', /dispatcher may not publish on elsewhere/]],
    // The console: nothing at all.
    ['console', 'fleet/v1/truck-1/alerts', ['service_denied', /^service console may not publish on fleet\/v1\/truck-1\/alerts$/]],
    ['console', 'fleet/v1/truck-1/telemetry', ['service_denied', /console may not publish/]],
    ['console', 'fleet/v1/truck-1/status', ['service_denied', /console may not publish/]],
  ];
  for (const [identity, topic, expected] of table) {
    it(`${identity} → ${JSON.stringify(topic)}: ${expected === 'allow' ? 'allowed' : expected[0]}`, () => {
      check(mayPublish(who[identity], topic, parseTopic(topic)), expected, `${identity} publishing on ${topic}`);
    });
  }
});

describe('who may subscribe to what', () => {
  const table: [keyof typeof who, string, Expect][] = [
    // A vehicle: its own alerts and rejection notices, no wildcard.
    ['truck', 'fleet/v1/truck-1/alerts', 'allow'],
    ['truck', 'fleet/v1/truck-1/rejected', 'allow'],
    [
      'truck',
      'fleet/v1/truck-1/telemetry',
      ['foreign_topic', /^vehicle truck-1 may only follow its own alerts, not fleet\/v1\/truck-1\/telemetry$/],
    ],
    ['truck', 'fleet/v1/truck-1/status', ['foreign_topic', /not fleet\/v1\/truck-1\/status/]],
    ['truck', 'fleet/v1/truck-1/alert-acks', ['foreign_topic', /not fleet\/v1\/truck-1\/alert-acks/]],
    ['truck', 'fleet/v1/truck-2/alerts', ['foreign_topic', /not fleet\/v1\/truck-2\/alerts/]],
    ['truck', 'fleet/v1/truck-2/rejected', ['foreign_topic', /not fleet\/v1\/truck-2\/rejected/]],
    ['truck', 'fleet/v1/+/alerts', ['foreign_topic', /not fleet\/v1\/\+\/alerts/]],
    ['truck', 'fleet/v1/truck-1/#', ['foreign_topic', /not fleet\/v1\/truck-1\/#/]],
    ['truck', '#', ['foreign_topic', /not #/]],
    ['truck', 'fleet/v1/truck-1/+', ['foreign_topic', /may only follow its own alerts/]],
    // The console: every vehicle's status and alerts, one vehicle's or all (+).
    ['console', 'fleet/v1/+/status', 'allow'],
    ['console', 'fleet/v1/+/alerts', 'allow'],
    ['console', 'fleet/v1/truck-1/status', 'allow'],
    ['console', 'fleet/v1/truck-1/alerts', 'allow'],
    ['console', 'fleet/v1/+/alert-acks', ['service_denied', /^service console may not subscribe to fleet\/v1\/\+\/alert-acks$/]],
    ['console', 'fleet/v1/+/telemetry', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v1/+/rejected', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v1/#', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v1/+/+', ['service_denied', /console may not subscribe/]],
    ['console', '#', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v1/truck 1/status', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v1/+/status/extra', ['service_denied', /console may not subscribe/]],
    ['console', 'fleet/v2/+/status', ['service_denied', /console may not subscribe/]],
    ['console', 'xfleet/v1/+/status', ['service_denied', /console may not subscribe/]],
    ['console', `fleet/v1/${'a'.repeat(65)}/status`, ['service_denied', /console may not subscribe/]],
    // The dispatcher: every cab's status and alert acknowledgements.
    ['dispatcher', 'fleet/v1/+/status', 'allow'],
    ['dispatcher', 'fleet/v1/+/alert-acks', 'allow'],
    ['dispatcher', 'fleet/v1/truck-1/alert-acks', 'allow'],
    ['dispatcher', `fleet/v1/${'a'.repeat(64)}/status`, 'allow'],
    ['dispatcher', 'fleet/v1/+/alerts', ['service_denied', /^service dispatcher may not subscribe to fleet\/v1\/\+\/alerts$/]],
    ['dispatcher', 'fleet/v1/+/telemetry', ['service_denied', /dispatcher may not subscribe/]],
    ['dispatcher', 'fleet/v1/#', ['service_denied', /dispatcher may not subscribe/]],
    ['dispatcher', 'fleet/v1/+/#', ['service_denied', /dispatcher may not subscribe/]],
  ];
  for (const [identity, filter, expected] of table) {
    it(`${identity} ← ${JSON.stringify(filter)}: ${expected === 'allow' ? 'allowed' : expected[0]}`, () => {
      check(maySubscribe(who[identity], filter), expected, `${identity} subscribing to ${filter}`);
    });
  }
});

describe('service roles', () => {
  it('are dispatcher and console, and nothing else a user name could say', () => {
    for (const name of ['dispatcher', 'console']) assert.equal(isServiceRole(name), true, name);
    for (const name of [undefined, '', 'service', 'Console', 'truck-1', 'admin', 'constructor', '__proto__'])
      assert.equal(isServiceRole(name), false, String(name));
  });
});
