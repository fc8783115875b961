import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { runFleet } from '../support/harness.js';
import { ROOT } from '../support/paths.js';

const examples = (name: string) => join(ROOT, 'cloud', 'replay', 'examples', name);

describe('fleet replay on the command line', () => {
  it('writes only JSON lines with their record kind to a pipe, and no progress', async () => {
    const proc = runFleet([
      'replay',
      '--rules',
      examples('rules.json'),
      '--csv',
      examples('engine-overheat.csv'),
      '--scores',
      '--format',
      'json',
    ]);
    assert.equal(await proc.exited, 0, proc.stderr.join('\n'));
    assert.deepEqual(proc.stderr, [], 'progress went to a pipe');
    const records = proc.lines.filter((l) => l !== '').map((l) => JSON.parse(l) as { record: string });
    assert.deepEqual(Object.fromEntries(['score', 'alert', 'summary'].map((k) => [k, records.filter((r) => r.record === k).length])), {
      score: 180,
      alert: 2,
      summary: 1,
    });
    assert.equal(records.at(-1)!.record, 'summary');
  });

  it('prints the same lines as releases before it streamed them, each JSON line valid', async () => {
    // Recorded from the release that wrote a line at a time: scripts parse this output.
    const expected = (name: string) => readFileSync(join(ROOT, 'test', 'fixtures', 'replay', name), 'utf8');
    const args = ['replay', '--rules', examples('rules.json'), '--csv', examples('engine-overheat.csv'), '--scores'];
    const json = runFleet([...args, '--format', 'json']);
    const table = runFleet(args);
    assert.equal(await json.exited, 0, json.stderr.join('\n'));
    assert.equal(await table.exited, 0, table.stderr.join('\n'));
    for (const line of json.lines.filter((l) => l !== '')) JSON.parse(line);
    assert.equal(`${json.lines.join('\n')}\n`, expected('engine-overheat.scores.jsonl'));
    assert.equal(`${table.lines.join('\n')}\n`, expected('engine-overheat.scores.txt'));
  });

  it('answers a bad rules file with the file and field, and exit 2', async () => {
    const proc = runFleet(['replay', '--rules', examples('engine-overheat.csv'), '--csv', examples('engine-overheat.csv')]);
    assert.equal(await proc.exited, 2);
    assert.match(proc.stderr.join('\n'), /^fleet: .*engine-overheat\.csv: not valid JSON/m);
  });
});
