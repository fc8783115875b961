import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import type { z } from 'zod';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { detectorConfigSchema } from '../../cloud/detector-config.js';
import { gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { ConfigError, loadConfig } from '../../shared/config.js';
import { runFleet, tempDir } from '../support/harness.js';
import { cases, FuzzTally, fuzzRandom, Mutator } from './mutators.js';

/** Each command's schema and a complete valid config to mutate: every setting, as a user might write them all. */
const COMMANDS = {
  agent: {
    schema: agentConfigSchema,
    valid: agentConfigSchema.parse({
      vehicle: 'truck-1',
      sensors: 'hardware',
      gpsPath: '/dev/fleet-gps',
      obdPath: '/dev/fleet-obd',
      ledPin: 17,
    }),
  },
  gateway: {
    schema: gatewayConfigSchema,
    valid: gatewayConfigSchema.parse({ sinks: ['embedded', 'kafka'], kafkaBrokers: ['127.0.0.1:9092'] }),
  },
  detector: { schema: detectorConfigSchema, valid: detectorConfigSchema.parse({ rulesFile: 'rules.json', windowMs: 10_000 }) },
} as const;
type Command = keyof typeof COMMANDS;

/**
 * A config file through loadConfig: a config, or a ConfigError each of whose lines names where
 * the bad value came from (this file, or `config` for a setting the file does not have) and
 * what is wrong with it. Returns the refusal's reason; anything else is a crash.
 */
function loadCase(schema: z.ZodObject, file: string, bytes: Buffer): string | undefined {
  writeFileSync(file, bytes);
  let config: unknown;
  try {
    config = loadConfig(schema, { file });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return reasonOfConfigError(err.message, file, bytes);
  }
  // What the loader returns is itself a valid config: loading is idempotent.
  schema.parse(config);
  return undefined;
}

function reasonOfConfigError(message: string, file: string, bytes: Buffer): string {
  if (!message.startsWith('invalid configuration:')) {
    assert.ok(message.startsWith(`${file}: `), `the file is not named first: ${message}`);
    return message.slice(file.length + 2).split(':')[0]!;
  }
  let doc: Record<string, unknown> = {};
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    assert.fail(`a file that is not JSON reported as settings: ${message}`);
  }
  // One problem a line, each indented by two spaces (a key may hold a newline of its own).
  const problems = message.split('\n  ').slice(1);
  assert.ok(problems.length > 0, `no problem named: ${message}`);
  // `source: field: what`, where a key from the file may itself hold ': ', so the source is matched first.
  const parts = problems.map((line) => {
    const source = line.startsWith(`${file}: `) ? 'file' : line.startsWith('config: ') ? 'config' : undefined;
    assert.ok(source, `a line that names neither the file nor "config": ${JSON.stringify(line)}`);
    const rest = line.slice(source === 'file' ? file.length + 2 : 'config: '.length);
    const what = rest.slice(rest.lastIndexOf(': ') + 2);
    assert.ok(rest.includes(': ') && what.trim() !== '', `no field and reason: ${JSON.stringify(line)}`);
    if (source === 'config') {
      const key = rest.split(/[.[:]/)[0]!;
      assert.ok(!Object.hasOwn(doc, key), `${key} is in the file but blamed on "config": ${line}`);
    }
    return what;
  });
  return parts[0]!
    .replace(/\d+/g, 'N')
    .split(/,| got /)[0]!
    .slice(0, 60);
}

describe('fuzz: config files (loadConfig with the agent, gateway and detector schemas)', () => {
  const dir = tempDir('fleet-fuzz-config-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const [command, { schema, valid }] of Object.entries(COMMANDS) as [Command, (typeof COMMANDS)[Command]][]) {
    it(`${command}: mutated config files load or fail with a ConfigError naming the file and the field`, () => {
      const m = new Mutator(fuzzRandom(`config ${command}`));
      const tally = new FuzzTally(`config file (${command})`);
      const file = join(dir, `${command}.json`);
      for (let i = 0, n = cases(8_000); i < n; i++) {
        const bytes = m.chance(0.05) ? m.garbage(200) : m.mutateJsonText(valid);
        tally.check(bytes, () => loadCase(schema, file, bytes));
      }
      assert.ok(tally.accepted > 0 && tally.rejected > tally.cases / 2, `accepted ${tally.accepted} of ${tally.cases}`);
      tally.finish({ minCases: cases(8_000) });
    });
  }

  it('the real CLI exits 2 naming the file for mutated configs the loader refuses', async () => {
    const m = new Mutator(fuzzRandom('config cli'));
    const tally = new FuzzTally('config file (fleet CLI)');
    const runs: Promise<void>[] = [];
    for (let i = 0; runs.length < cases(21); i++) {
      const command = (['agent', 'gateway', 'detector'] as const)[i % 3]!;
      const file = join(dir, `cli-${i}.json`);
      const bytes = m.mutateJsonText(COMMANDS[command].valid);
      // Only refused ones: a config that loads would start a real service.
      let reason: string | undefined;
      try {
        reason = loadCase(COMMANDS[command].schema, file, bytes);
      } catch {
        continue;
      }
      if (reason === undefined) continue;
      runs.push(
        tally.checkAsync(bytes, async () => {
          const p = runFleet([command, '--config', file]);
          const code = await p.exited;
          const err = p.stderr.join('\n');
          assert.equal(code, 2, `fleet ${command} --config ${file} exited ${code}: ${err}`);
          assert.ok(err.includes(file), `stderr does not name ${file}: ${err}`);
          return reason;
        }),
      );
      // A few at a time: each is a Node process starting on a shared machine.
      if (runs.length % 4 === 0) await Promise.all(runs);
    }
    await Promise.all(runs);
    tally.finish({ minCases: cases(21) });
  });
});
