import assert from 'node:assert/strict';
import { Command } from 'commander';
import { describe, it } from 'vitest';
import { z } from 'zod';
import { addSettingFlags, flaglessSettings, settingFlags } from '../../../bin/flags-from-schema.js';
import { bool, ConfigError, int, list, loadConfig } from '../../../shared/config.js';

const schema = z
  .object({
    name: z.string().describe('a setting without a default'),
    maxInflight: int().min(1).default(8).describe('publishes in flight'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883').describe('gateway URL'),
    commitIntervalMs: int().min(1).default(50).describe('group commit interval'),
    compress: bool().default(false).describe('deflate batches'),
    synchronous: z.enum(['FULL', 'NORMAL']).default('FULL').describe('SQLite synchronous'),
    sensor: z.enum(['engine_temp', 'container_temp', 'speed']).optional().describe('one sensor'),
    sinks: list(z.enum(['embedded', 'kafka']))
      .default(['embedded'])
      .describe('where batches go'),
    kafkaBrokers: list(z.string()).default([]).describe('brokers'),
    password: z.string().optional().meta({ description: 'the vehicle secret', secret: true }),
    streamPath: z.string().optional().meta({ description: 'stream file', defaultText: 'DATA_DIR/stream.db' }),
    rules: z.string().optional().meta({ description: 'rules file', arg: 'file' }),
    // Not a flag: a list of objects.
    faults: z
      .array(z.object({ fromS: z.number() }))
      .default([])
      .meta({ description: 'faults', flag: false }),
  })
  .strict();

const flags = Object.fromEntries(settingFlags(schema).map((f) => [f.key, f]));

async function parse(argv: string[], mandatory = false): Promise<Record<string, unknown>> {
  const cmd = addSettingFlags(new Command('test'), schema, { mandatory })
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  await cmd.action(() => {}).parseAsync(argv, { from: 'user' });
  return cmd.opts();
}

describe('flags from a settings schema', () => {
  it('names each flag after its key, with what its value looks like', () => {
    assert.deepEqual(Object.fromEntries(Object.values(flags).map((f) => [f.key, f.term])), {
      name: '--name <name>',
      maxInflight: '--max-inflight <n>',
      mqttUrl: '--mqtt-url <url>',
      commitIntervalMs: '--commit-interval-ms <ms>',
      compress: '--compress [true|false]',
      synchronous: '--synchronous <FULL|NORMAL>',
      sensor: '--sensor <sensor>',
      sinks: '--sinks <embedded|kafka,...>',
      kafkaBrokers: '--kafka-brokers <broker,...>',
      password: '--password <password>',
      streamPath: '--stream-path <path>',
      rules: '--rules <file>',
    });
  });

  it('shows the default from the schema, the choices, and the variable a secret is better given in', () => {
    assert.equal(flags.maxInflight!.help, 'publishes in flight (default: 8)');
    assert.equal(flags.mqttUrl!.help, 'gateway URL (default: mqtt://127.0.0.1:1883)');
    assert.equal(flags.compress!.help, 'deflate batches (default: false)');
    assert.equal(flags.synchronous!.help, 'SQLite synchronous (default: FULL)');
    assert.equal(flags.sensor!.help, 'one sensor (one of engine_temp, container_temp, speed)');
    assert.equal(flags.sinks!.help, 'where batches go (default: embedded)');
    assert.equal(flags.kafkaBrokers!.help, 'brokers', 'an empty default is no default');
    assert.equal(flags.password!.help, 'the vehicle secret (prefer FLEET_PASSWORD)');
    assert.equal(flags.streamPath!.help, 'stream file (default: DATA_DIR/stream.db)');
    assert.equal(flags.name!.help, 'a setting without a default');
  });

  it('makes no flag for a setting marked flag-less, and lists it', () => {
    assert.equal(flags.faults, undefined);
    assert.deepEqual(flaglessSettings(schema), ['faults']);
  });

  it('turns parsed flags into the settings the schema validates: numbers, booleans, lists, enums', async () => {
    const given = await parse([
      '--name',
      'n',
      '--max-inflight',
      '3',
      '--compress',
      '--synchronous',
      'NORMAL',
      '--sinks',
      'kafka, embedded',
      '--kafka-brokers',
      'a:1,b:2',
    ]);
    const config = loadConfig(schema, { flags: given });
    assert.equal(config.maxInflight, 3);
    assert.equal(config.compress, true);
    assert.equal(config.synchronous, 'NORMAL');
    assert.deepEqual(config.sinks, ['kafka', 'embedded']);
    assert.deepEqual(config.kafkaBrokers, ['a:1', 'b:2']);
    assert.equal(config.mqttUrl, 'mqtt://127.0.0.1:1883', 'a flag not given leaves the default (or the file and environment)');
    assert.equal(loadConfig(schema, { flags: await parse(['--name', 'n', '--compress', 'false']) }).compress, false);
  });

  it('leaves a bad value to the schema, which names the flag and what is wrong', async () => {
    const refused = (argv: string[], message: string) =>
      parse(['--name', 'n', ...argv]).then((given) =>
        assert.throws(
          () => loadConfig(schema, { flags: given }),
          (err: unknown) => err instanceof ConfigError && err.message.includes(message),
        ),
      );
    await refused(['--max-inflight', '0'], 'flag --max-inflight: maxInflight: expected number to be >=1');
    await refused(['--max-inflight', 'eight'], 'flag --max-inflight: maxInflight: expected number');
    await refused(['--synchronous', 'OFF'], 'flag --synchronous: synchronous: expected one of "FULL"|"NORMAL"');
    await refused(['--sinks', 'kafka,carrier-pigeon'], 'flag --sinks: sinks[1]:');
    await refused(['--compress', 'yes'], 'flag --compress: compress:');
  });

  it("requires a required setting's flag only where flags are the command's only source", async () => {
    await assert.rejects(parse(['--max-inflight', '2'], true), /required option '--name <name>' not specified/);
    const given = await parse(['--max-inflight', '2']);
    assert.throws(() => loadConfig(schema, { flags: given }), /config: name:/);
  });

  it('refuses a schema it cannot make flags for, naming the setting', () => {
    const nested = z.object({ limits: z.object({ max: z.number() }).describe('limits') });
    assert.throws(() => settingFlags(nested), /setting limits is nested: mark it flag: false/);
    const undescribed = z.object({ lingerMs: int().default(200) });
    assert.throws(() => settingFlags(undescribed), /setting lingerMs has no description/);
  });
});
