import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { DEFAULT_RULES } from '../../../shared/rules/default-rules.js';
import { ruleSetSchema } from '../../../shared/rules/rule-set.js';

const HOT = { name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' };
const RISE = { name: 'rise', type: 'rate', sensor: 'engine_temp', maxPerMinute: 30 };
const DEV = { name: 'dev', type: 'deviation', sensor: 'container_temp', k: 3 };

describe('ruleSetSchema', () => {
  const parse = (doc: unknown) => {
    const r = ruleSetSchema.safeParse(doc);
    assert.equal(r.success, false, 'expected the rule set to be refused');
    return r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  };

  it('fills defaults', () => {
    const rs = ruleSetSchema.parse({ rules: [{ name: 'r', type: 'deviation', sensor: 'rpm', k: 2 }] });
    assert.deepEqual(rs, {
      windowMs: 10_000,
      freshnessMs: 60_000,
      rules: [
        {
          name: 'r',
          type: 'deviation',
          sensor: 'rpm',
          k: 2,
          severity: 'warning',
          driver: true,
          forWindows: 1,
          clearAfterWindows: 1,
          direction: 'both',
          minStd: 0.5,
          warmupWindows: 30,
          levelShiftAfterWindows: 60,
          halfLifeWindows: 360,
          memoryWindows: 8640,
          settleWindows: 720,
          seasonality: 'auto',
          minStdFraction: 0,
        },
      ],
    });
  });

  it('tells the cab of value rules and only the fleet of sensor-health rules, unless told otherwise', () => {
    const rs = ruleSetSchema.parse({
      rules: [
        HOT,
        { name: 'frozen', type: 'stuck', sensor: 'engine_temp' },
        { name: 'gone', type: 'dropout', sensor: 'engine_temp' },
        { name: 'teleport', type: 'jump', sensor: 'gps', tolerance: 50, maxPerSecond: 70 },
        { name: 'loud', type: 'stuck', sensor: 'rpm', driver: true },
      ],
    });
    assert.deepEqual(
      rs.rules.map((r) => [r.name, r.driver]),
      [
        ['hot', true],
        ['frozen', false],
        ['gone', false],
        ['teleport', false],
        ['loud', true],
      ],
    );
  });

  it('takes windows up to a day', () => {
    assert.equal(ruleSetSchema.parse({ rules: [HOT], windowMs: 86_400_000 }).windowMs, 86_400_000);
    assert.equal(parse({ rules: [HOT], windowMs: 86_400_001 })[0]!.path, 'windowMs');
  });

  it('rejects duplicate names, naming the rule', () => {
    const issues = parse({ rules: [HOT, RISE, { ...HOT, above: 110 }] });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'rules.2.name');
    assert.match(issues[0]!.message, /"hot"/);
    assert.match(issues[0]!.message, /unique/);
  });

  it('rejects a threshold without above or below', () => {
    const issues = parse({ rules: [RISE, { name: 'x', type: 'threshold', sensor: 'speed' }] });
    assert.equal(issues.length, 1);
    assert.equal(issues[0]!.path, 'rules.1');
    assert.match(issues[0]!.message, /"above" or "below"/);
  });

  it('rejects a context rule explaining a sensor by itself, and value rules on gps', () => {
    const self = parse({ rules: [{ name: 'c', type: 'context', sensor: 'engine_temp', inputs: ['engine_load', 'engine_temp'] }] });
    assert.deepEqual(self, [{ path: 'rules.0.inputs', message: 'a context rule cannot explain engine_temp by itself' }]);
    const gps = parse({ rules: [{ name: 'g', type: 'threshold', sensor: 'gps', above: 100 }] });
    assert.equal(gps[0]!.path, 'rules.0.sensor');
    assert.match(gps[0]!.message, /only jump and dropout rules/);
  });

  it('rejects unknown fields, naming them', () => {
    const inRule = parse({ rules: [{ ...HOT, abvoe: 3 }] });
    assert.equal(inRule[0]!.path, 'rules.0');
    assert.match(inRule[0]!.message, /abvoe/);
    const top = parse({ rules: [HOT], windowSize: 5000 });
    assert.equal(top[0]!.path, '');
    assert.match(top[0]!.message, /windowSize/);
  });

  it('rejects bad values, naming the field', () => {
    assert.equal(parse({ rules: [{ ...HOT, sensor: 'oil' }] })[0]!.path, 'rules.0.sensor');
    assert.equal(parse({ rules: [{ ...HOT, name: 'Hot Engine' }] })[0]!.path, 'rules.0.name');
    assert.equal(parse({ rules: [{ ...HOT, type: 'magic' }] })[0]!.path, 'rules.0.type');
    assert.equal(parse({ rules: [{ ...DEV, k: 0 }] })[0]!.path, 'rules.0.k');
    assert.equal(parse({ rules: [{ ...DEV, direction: 'up' }] })[0]!.path, 'rules.0.direction');
    assert.equal(parse({ rules: [{ name: 's', type: 'stuck', sensor: 'rpm', forWindows: 1 }] })[0]!.path, 'rules.0.forWindows');
    assert.equal(parse({ rules: [RISE], windowMs: 50 })[0]!.path, 'windowMs');
    assert.equal(parse({ rules: [] })[0]!.path, 'rules');
  });

  it('accepts its own default rules as a rules file would give them', () => {
    assert.deepEqual(ruleSetSchema.parse(JSON.parse(JSON.stringify(DEFAULT_RULES))), DEFAULT_RULES);
  });
});
