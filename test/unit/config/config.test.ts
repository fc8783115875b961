import { afterAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { agentConfigSchema } from '../../../agent/agent-config.js';
import { gatewayConfigSchema } from '../../../gateway/gateway-config.js';
import { DEV_SERVICE_TOKEN } from '../../../shared/service-token.js';
import { bool, ConfigError, envName, int, loadConfig, num, parseFile, plain } from '../../../shared/config.js';
import { ruleSetSchema } from '../../../shared/rules/rule-set.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: unknown): string {
  const path = join(dir, `config-${++n}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** Asserts a ConfigError whose message contains every fragment: the user must find the source and field. */
function configError(fn: () => unknown, ...fragments: string[]): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    message = err.message;
    for (const f of fragments) assert.ok(message.includes(f), `${JSON.stringify(message)} does not mention ${JSON.stringify(f)}`);
    return true;
  });
  return message;
}

const small = z
  .object({
    name: z.string().default('fleet'),
    port: int().min(1).max(65535).default(80),
    ratio: num().default(0.5),
    verbose: bool().default(false),
    maxInflight: int().min(1).default(8),
    tags: z.array(z.string()).default([]),
  })
  .strict();

describe('loadConfig precedence', () => {
  it('uses the defaults when nothing is given', () => {
    assert.deepEqual(loadConfig(small, {}), { name: 'fleet', port: 80, ratio: 0.5, verbose: false, maxInflight: 8, tags: [] });
  });

  it('lets file override defaults, env override file and flags override env', () => {
    const path = file({ name: 'from-file', port: 1000, ratio: 0.1, maxInflight: 2, tags: ['a'] });
    const env = { FLEET_PORT: '2000', FLEET_RATIO: '0.2', FLEET_MAX_INFLIGHT: '3' };
    const flags = { port: '3000', maxInflight: undefined };
    assert.deepEqual(loadConfig(small, { file: path }), {
      name: 'from-file',
      port: 1000,
      ratio: 0.1,
      verbose: false,
      maxInflight: 2,
      tags: ['a'],
    });
    assert.deepEqual(loadConfig(small, { file: path, env }), {
      name: 'from-file',
      port: 2000,
      ratio: 0.2,
      verbose: false,
      maxInflight: 3,
      tags: ['a'],
    });
    assert.deepEqual(loadConfig(small, { file: path, env, flags }), {
      name: 'from-file',
      port: 3000,
      ratio: 0.2,
      verbose: false,
      maxInflight: 3,
      tags: ['a'],
    });
  });

  it('ignores empty env values, undefined flags and env for fields the schema does not have', () => {
    const config = loadConfig(small, {
      env: { FLEET_PORT: '', FLEET_NAME: 'env-name', FLEET_COLOUR: 'blue', PORT: '9', name: 'no' },
      flags: { port: undefined },
    });
    assert.deepEqual(config, { name: 'env-name', port: 80, ratio: 0.5, verbose: false, maxInflight: 8, tags: [] });
  });

  it('names env variables FLEET_SNAKE_CASE', () => {
    assert.equal(envName('port'), 'FLEET_PORT');
    assert.equal(envName('bufferMaxBytes'), 'FLEET_BUFFER_MAX_BYTES');
    assert.equal(envName('simHz'), 'FLEET_SIM_HZ');
  });
});

describe('loadConfig coercion', () => {
  it('turns string flags and env into numbers and booleans', () => {
    assert.deepEqual(loadConfig(small, { flags: { port: '8080', ratio: '0.25', verbose: 'true' } }).port, 8080);
    for (const [text, value] of [
      ['true', true],
      ['1', true],
      ['false', false],
      ['0', false],
    ] as const) {
      assert.equal(loadConfig(small, { flags: { verbose: text } }).verbose, value, text);
      assert.equal(loadConfig(small, { env: { FLEET_VERBOSE: text } }).verbose, value, text);
    }
    assert.equal(loadConfig(small, { flags: { ratio: '0.25' } }).ratio, 0.25);
    assert.equal(loadConfig(small, { flags: { verbose: true, port: 81 } }).verbose, true);
  });

  it('refuses strings that are not numbers or booleans, naming the flag', () => {
    configError(() => loadConfig(small, { flags: { port: 'eighty' } }), 'flag --port', 'port:');
    configError(() => loadConfig(small, { flags: { port: '80.5' } }), 'flag --port: port: expected a whole number');
    configError(() => loadConfig(small, { flags: { verbose: 'yes' } }), 'flag --verbose: verbose:', 'boolean');
    configError(() => loadConfig(small, { env: { FLEET_RATIO: 'Infinity' } }), 'env FLEET_RATIO: ratio:');
  });
});

describe('loadConfig errors', () => {
  it('throws a ConfigError naming the flag and the field', () => {
    const msg = configError(
      () => loadConfig(agentConfigSchema, { flags: { vehicle: 'truck-1', bufferMaxBytes: '1000' } }),
      'flag --buffer-max-bytes',
      'bufferMaxBytes',
    );
    assert.match(msg, /^invalid configuration:\n {2}flag --buffer-max-bytes: bufferMaxBytes: expected number to be >=65536$/);
  });

  it('names the env variable when the bad value came from the environment', () => {
    configError(
      () => loadConfig(agentConfigSchema, { env: { FLEET_VEHICLE: 'truck-1', FLEET_BUFFER_MAX_BYTES: 'lots' } }),
      'env FLEET_BUFFER_MAX_BYTES: bufferMaxBytes:',
    );
  });

  it('names the file when the bad value came from it, with the path inside it', () => {
    const path = file({
      vehicle: 'truck-1',
      bufferMaxBytes: 10,
      faults: [
        { kind: 'engine_overheat', fromS: 1 },
        { kind: 'meteor', fromS: 2 },
      ],
    });
    const msg = configError(() => loadConfig(agentConfigSchema, { file: path }), `${path}: bufferMaxBytes:`, `${path}: faults[1].kind:`);
    assert.equal(msg.split('\n').length, 3, 'one line per problem');
  });

  it('names the flag, not the file, when a flag overrode the file with a bad value', () => {
    const path = file({ vehicle: 'truck-1', bufferMaxBytes: 1 << 20 });
    const msg = configError(
      () => loadConfig(agentConfigSchema, { file: path, flags: { bufferMaxBytes: '12' } }),
      'flag --buffer-max-bytes: bufferMaxBytes:',
    );
    assert.ok(!msg.includes(path), msg);
  });

  it('reports a missing required field as config', () => {
    configError(() => loadConfig(agentConfigSchema, {}), 'config: vehicle:');
  });

  it('rejects an unknown field in the file, naming the field and the file', () => {
    const path = file({ vehicle: 'truck-1', bufferMaxByte: 1 << 20 });
    configError(() => loadConfig(agentConfigSchema, { file: path }), `${path}: bufferMaxByte:`);
    const nested = file({ vehicle: 'truck-1', faults: [{ kind: 'dropout', sensor: 'gps', fromS: 0, until: 5 }] });
    configError(() => loadConfig(agentConfigSchema, { file: nested }), `${nested}: faults[0].until:`);
  });

  it('names the file for unknown keys that are Object.prototype names (found by fuzzing)', () => {
    for (const key of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      const path = file(`{"vehicle": "truck-1", ${JSON.stringify(key)}: 1}`);
      configError(() => loadConfig(agentConfigSchema, { file: path }), `${path}: ${key}: unknown setting`);
    }
  });

  it('rejects an unknown flag, naming it', () => {
    configError(() => loadConfig(small, { flags: { colour: 'blue' } }), 'flag --colour: colour:');
  });

  it('reports a missing file, an unreadable one and invalid JSON clearly', () => {
    const missing = join(dir, 'nope.json');
    configError(() => loadConfig(small, { file: missing }), `${missing}: cannot read: ENOENT`);
    const directory = join(dir, 'a-directory');
    mkdirSync(directory);
    configError(() => loadConfig(small, { file: directory }), `${directory}: cannot read: EISDIR`);
    const broken = file('{"port": 80,');
    configError(() => loadConfig(small, { file: broken }), `${broken}: not valid JSON:`);
    const array = file('[1, 2]');
    configError(() => loadConfig(small, { file: array }), `${array}: must hold a JSON object of settings`);
    const nul = file('null');
    configError(() => loadConfig(small, { file: nul }), `${nul}: must hold a JSON object of settings`);
  });

  it("strips zod's redundant prefix from messages", () => {
    assert.equal(plain('Invalid input: expected number, received NaN'), 'expected number, received NaN');
    assert.equal(plain('Too small: expected number to be >=1'), 'expected number to be >=1');
    assert.equal(plain('rule names must be unique'), 'rule names must be unique');
  });
});

describe('agentConfigSchema through loadConfig', () => {
  it('fills every default from a vehicle alone', () => {
    const c = loadConfig(agentConfigSchema, { flags: { vehicle: 'truck-1' } });
    assert.equal(c.vehicle, 'truck-1');
    assert.equal(c.mqttUrl, 'mqtt://127.0.0.1:1883');
    assert.equal(c.bufferMaxBytes, 256 * 1024 * 1024);
    assert.equal(c.synchronous, 'FULL');
    assert.equal(c.compress, false);
    assert.equal(c.sensors, 'simulated');
    assert.deepEqual(c.faults, []);
    assert.equal(c.simHz, undefined);
  });

  it('takes flags as commander gives them: strings, camelCase', () => {
    const path = file({ vehicle: 'truck-1', compress: false, faults: [{ kind: 'cargo_heating', fromS: 30 }] });
    const c = loadConfig(agentConfigSchema, {
      file: path,
      env: { FLEET_SYNCHRONOUS: 'NORMAL', FLEET_SIM_HZ: '4' },
      flags: { bufferMaxBytes: '1048576', compress: 'true', opsPort: '-1', simHz: '10' },
    });
    assert.equal(c.bufferMaxBytes, 1048576);
    assert.equal(c.compress, true);
    assert.equal(c.opsPort, -1);
    assert.equal(c.simHz, 10);
    assert.equal(c.synchronous, 'NORMAL');
    assert.deepEqual(c.faults, [{ kind: 'cargo_heating', fromS: 30 }]);
  });

  it('rejects a bad vehicle id and url, naming them', () => {
    configError(() => loadConfig(agentConfigSchema, { flags: { vehicle: 'truck 1' } }), 'flag --vehicle: vehicle: must be 1-64 characters');
    configError(() => loadConfig(agentConfigSchema, { flags: { vehicle: 't', mqttUrl: 'not a url' } }), 'flag --mqtt-url: mqttUrl:');
    configError(
      () => loadConfig(agentConfigSchema, { env: { FLEET_VEHICLE: 't', FLEET_SYNCHRONOUS: 'OFF' } }),
      'env FLEET_SYNCHRONOUS: synchronous:',
    );
  });
});

describe('gatewayConfigSchema through loadConfig', () => {
  it('fills the defaults', () => {
    const c = loadConfig(gatewayConfigSchema, {});
    // Field by field, so a setting added later does not break this test.
    const expected = {
      host: '127.0.0.1',
      port: 1883,
      dataDir: 'var/gateway',
      maxPayloadBytes: 256 * 1024,
      serviceToken: DEV_SERVICE_TOKEN,
      sinks: ['embedded'],
      sinkRetryBaseMs: 200,
      sinkRetryMaxMs: 10_000,
      opsHost: '127.0.0.1',
      opsPort: 9102,
    };
    for (const [key, value] of Object.entries(expected)) assert.deepEqual(c[key as keyof typeof c], value, key);
  });

  it('coerces and layers like any other command', () => {
    const path = file({ port: 1884, serviceToken: 'file-token-123' });
    const c = loadConfig(gatewayConfigSchema, {
      file: path,
      env: { FLEET_PORT: '0', FLEET_MAX_PAYLOAD_BYTES: '1024' },
      flags: { serviceToken: 'flag-token-456' },
    });
    assert.deepEqual([c.port, c.maxPayloadBytes, c.serviceToken], [0, 1024, 'flag-token-456']);
  });

  it('names source and field of bad values', () => {
    configError(() => loadConfig(gatewayConfigSchema, { flags: { port: '70000' } }), 'flag --port: port:');
    configError(() => loadConfig(gatewayConfigSchema, { env: { FLEET_SERVICE_TOKEN: 'short' } }), 'env FLEET_SERVICE_TOKEN: serviceToken:');
    const path = file({ sinks: ['carrier-pigeon'] });
    configError(() => loadConfig(gatewayConfigSchema, { file: path }), `${path}: sinks[0]:`);
    const empty = file({ sinks: [] });
    configError(() => loadConfig(gatewayConfigSchema, { file: empty }), `${empty}: sinks:`);
  });
});

describe('parseFile', () => {
  it("parses a valid data file with the schema's defaults", () => {
    const path = file({ rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 105 }] });
    const rs = parseFile(ruleSetSchema, path);
    assert.equal(rs.windowMs, 10_000);
    assert.equal(rs.rules[0]!.severity, 'warning');
  });

  it('names the file and the field path of every problem', () => {
    const path = file({
      windowMs: 5,
      rules: [
        { name: 'hot', type: 'threshold', sensor: 'engine_temp' },
        { name: 'x', type: 'rate', sensor: 'speed', maxPerMinute: -1 },
      ],
    });
    const msg = configError(
      () => parseFile(ruleSetSchema, path),
      `${path}: windowMs:`,
      `${path}: rules[0]: a threshold rule needs "above" or "below"`,
      `${path}: rules[1].maxPerMinute:`,
    );
    assert.equal(msg.split('\n').length, 3);
  });

  it('names unknown fields and duplicate rule names', () => {
    const unknown = file({ rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 1, abvoe: 2 }] });
    configError(() => parseFile(ruleSetSchema, unknown), `${unknown}: rules[0]:`, 'abvoe');
    const rule = { name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 1 };
    const dup = file({ rules: [rule, rule] });
    configError(() => parseFile(ruleSetSchema, dup), `${dup}: rules[1].name:`, '"hot"');
  });

  it('reports missing files and invalid JSON with the path', () => {
    const missing = join(dir, 'missing-rules.json');
    configError(() => parseFile(ruleSetSchema, missing), `${missing}: cannot read: ENOENT`);
    const broken = file('{rules: []}');
    configError(() => parseFile(ruleSetSchema, broken), `${broken}: not valid JSON:`);
    configError(() => parseFile(ruleSetSchema, file('[]')), ': (top level): ');
  });
});

describe('gatewayConfigSchema sinks', () => {
  it('takes a comma-separated list from a flag and needs brokers for kafka', () => {
    assert.deepEqual(loadConfig(gatewayConfigSchema, { flags: { sinks: 'kafka, embedded', kafkaBrokers: '127.0.0.1:9092' } }).sinks, [
      'kafka',
      'embedded',
    ]);
    configError(() => loadConfig(gatewayConfigSchema, { flags: { sinks: 'kafka' } }), 'kafkaBrokers: the kafka sink needs kafkaBrokers');
  });
});
