import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'vitest';
import { ROOT } from '../support/paths.js';

/** Every TypeScript source under a folder of the repository. */
function sources(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(folder, f));
}

/** What a file imports, each path resolved against the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\b[^;]*?from '(\.[^']+)'/gms)].map((m) => relative(ROOT, join(ROOT, file, '..', m[1]!)));
}

function offenders(folders: string[], forbidden: (target: string) => boolean, allowed: (file: string) => boolean = () => false): string[] {
  return folders
    .flatMap(sources)
    .filter((f) => !allowed(f))
    .flatMap((f) =>
      importsOf(f)
        .filter(forbidden)
        .map((t) => `${f} → ${t}`),
    );
}

describe('layering', () => {
  it('the agent runs without the simulators: it reaches them only through shared modules', () => {
    assert.deepEqual(
      offenders(['agent'], (t) => t.startsWith('simulators/')),
      [],
    );
    assert.ok(importsOf('agent/agent-config.ts').includes('shared/fault-kinds.js'), 'the fault kinds the config names');
  });

  it('the cloud takes nothing from the gateway', () => {
    assert.deepEqual(
      offenders(['cloud'], (t) => t.startsWith('gateway/')),
      [],
    );
    assert.ok(importsOf('cloud/alerts/create-channels.ts').includes('shared/service-token.js'), 'the development service token');
  });

  it("no sink or source encodes or decodes telemetry by itself: the stream record is stream-record.ts's", () => {
    // IoT Core is given the truck's own telemetry payload (its rules route that on), not a stream record.
    const iotCore = (f: string) => f.startsWith('gateway/sinks/iot-core/');
    assert.deepEqual(
      offenders(['gateway/sinks', 'cloud/sources'], (t) => t === 'shared/contract/codec.js', iotCore),
      [],
    );
    assert.ok(importsOf('cloud/sources/kafka-source.ts').includes('shared/contract/stream-record.js'));
  });
});
