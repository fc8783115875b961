/**
 * `npm run reliability [-- --soak N]`: runs the chaos and fuzz suites (test/chaos, test/fuzz)
 * with RELIABILITY_OUT set, so each scenario writes its figures, then rewrites
 * docs/RELIABILITY.md from them. The test runner's output streams through as progress.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './support/paths.js';
import type { ChaosFigures, FuzzFigures, PowerCutFigures, ReliabilityFigures } from './support/reliability.js';

const USAGE = `Usage: npm run reliability -- [--soak N] [--power-cuts N]

Runs every chaos scenario (test/chaos) and fuzz target (test/fuzz) against real processes,
brokers and files, then rewrites docs/RELIABILITY.md with what they measured: kills per part,
readings produced, stored and lost, duplicates, alerts expected and raised, notifications per
alert, power cuts of the Raspberry Pi image (100 per soak), fuzz cases and crashes per entry point.

Options:
  --soak N         scale every scenario up N times (kills, outages, fuzz cases); default 1, as in CI
  --power-cuts N   cut the Raspberry Pi image's power N times; default 100 × the soak
                   (about 40 s each under QEMU)
  --help           this text`;

const DOC = join(ROOT, 'docs', 'RELIABILITY.md');
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');

const { values } = parseArgs({
  options: { soak: { type: 'string', default: '1' }, 'power-cuts': { type: 'string' }, help: { type: 'boolean', default: false } },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const soak = Number(values.soak);
if (!Number.isInteger(soak) || soak < 1) {
  process.stderr.write(`--soak: must be a whole number ≥ 1, got ${values.soak}\n${USAGE}\n`);
  process.exit(2);
}

const powerCuts = values['power-cuts'] === undefined ? 100 * soak : Number(values['power-cuts']);
if (!Number.isInteger(powerCuts) || powerCuts < 1) {
  process.stderr.write(`--power-cuts: must be a whole number ≥ 1, got ${values['power-cuts']}\n${USAGE}\n`);
  process.exit(2);
}

const out = mkdtempSync(join(tmpdir(), 'fleet-reliability-'));
const started = Date.now();
process.stderr.write(`reliability: the chaos and fuzz suites, soak ×${soak}; figures in ${out}\n`);
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, [VITEST, 'run', '--project', 'chaos', '--project', 'fuzz'], {
    cwd: ROOT,
    env: { ...process.env, RELIABILITY_OUT: out, RELIABILITY_SOAK: String(soak), RELIABILITY_POWER_CUTS: String(powerCuts) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.once('exit', (c) => resolve(c ?? 1));
});

const figures = readdirSync(out)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(out, f), 'utf8')) as ReliabilityFigures);
const flags = [...(soak > 1 ? [`--soak ${soak}`] : []), ...(values['power-cuts'] ? [`--power-cuts ${powerCuts}`] : [])];
const command = flags.length > 0 ? `npm run reliability -- ${flags.join(' ')}` : 'npm run reliability';
writeFileSync(DOC, render(figures, command, Math.round((Date.now() - started) / 1000), code));
process.stderr.write(`reliability: ${figures.length} scenarios written to docs/RELIABILITY.md; the test run exited ${code}\n`);
process.exit(code);

function render(all: ReliabilityFigures[], command: string, seconds: number, exitCode: number): string {
  const chaos = all.filter((f): f is ChaosFigures => f.kind === 'chaos');
  const fuzz = all.filter((f): f is FuzzFigures => f.kind === 'fuzz');
  const power = all.filter((f): f is PowerCutFigures => f.kind === 'power');
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const n = (x: number) => x.toLocaleString('en');
  const totalKills = sum(chaos.map((c) => sum(Object.values(c.kills))));
  const killsByPart = new Map<string, number>();
  for (const c of chaos) for (const [part, k] of Object.entries(c.kills)) killsByPart.set(part, (killsByPart.get(part) ?? 0) + k);
  const lines = [
    '# Reliability',
    '',
    '<!-- Written by `npm run reliability`; do not edit by hand. -->',
    '',
    `Run ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      `\`${command}\`, ${Math.round(seconds / 60)} min; the suites ${exitCode === 0 ? 'passed' : `FAILED (exit ${exitCode})`}.`,
    '',
    '## Headline',
    '',
    `- **${n(totalKills)} process kills** (${[...killsByPart].map(([p, k]) => `${p} ${k}`).join(', ')}), ` +
      `**${n(sum(chaos.map((c) => c.produced)))} readings** produced, **${n(sum(chaos.map((c) => c.lost)))} lost**, ` +
      `${n(sum(chaos.map((c) => c.duplicates)))} duplicates stored (dropped by (vehicle, seq)).`,
    ...power.map(
      (p) =>
        `- **${n(p.cuts)} power cuts** of the Raspberry Pi image: ${n(p.committed)} readings committed, **${n(p.lost)} lost**, ` +
        `${n(p.duplicates)} duplicates; about ${n(p.uncommittedAtCuts)} taken but not yet committed at the cuts (longest window ${p.maxWindowMs} ms).`,
    ),
    `- Alerts: ${n(sum(chaos.map((c) => c.alertsRaised)))} raised of ${n(sum(chaos.map((c) => c.alertsExpected)))} expected; ` +
      `notifications per alert: ${[...new Set(chaos.filter((c) => c.notificationsPerAlert !== null).map((c) => c.notificationsPerAlert))].join(', ') || 'n/a'}.`,
    `- **${n(sum(fuzz.map((f) => f.cases)))} fuzz cases** over ${fuzz.length} entry points, **${n(sum(fuzz.map((f) => f.crashes)))} crashes**; ` +
      `${n(sum(fuzz.map((f) => f.rejected)))} inputs refused, each with a reason.`,
    '',
    '## Chaos scenarios (test/chaos)',
    '',
    '| scenario | kills | produced | stored | lost | duplicates | alerts expected | alerts raised | notifications per alert | seconds |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...chaos.map(
      (c) =>
        `| ${c.scenario} | ${
          Object.entries(c.kills)
            .filter(([, k]) => k > 0)
            .map(([p, k]) => `${p} ${k}`)
            .join(', ') || '—'
        } | ${n(c.produced)} | ${n(c.stored)} | ${n(c.lost)} | ` +
        `${n(c.duplicates)} | ${c.alertsExpected} | ${c.alertsRaised} | ${c.notificationsPerAlert ?? '—'} | ${c.durationS} |`,
    ),
    '',
    '## Power cuts (test/chaos/power-cuts.test.ts)',
    '',
    "The Raspberry Pi image (hardware/pi/image) booted under qemu-system-aarch64 (TCG), its disk opened with `cache=directsync`, QEMU killed at random moments while the agent samples and publishes, then booted again. *Uncommitted* estimates the readings taken but not yet committed when the power went (the window from the last stored reading to the cut, at the boot's own rate): the loss the design accepts, one group commit.",
    '',
    '| scenario | cuts | committed | acknowledged | stored | lost | duplicates | uncommitted at the cuts | longest window (ms) | commit interval (ms) | seconds |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...power.map(
      (p) =>
        `| ${p.scenario} | ${p.cuts} | ${n(p.committed)} | ${n(p.acknowledged)} | ${n(p.stored)} | ${n(p.lost)} | ${n(p.duplicates)} | ` +
        `${n(p.uncommittedAtCuts)} | ${p.maxWindowMs} | ${p.commitIntervalMs} | ${p.durationS} |`,
    ),
    '',
    '## Fuzzing (test/fuzz)',
    '',
    '| entry point | cases | crashes | refused | refusal reasons | seconds |',
    '| --- | ---: | ---: | ---: | --- | ---: |',
    ...fuzz.map(
      (f) =>
        `| ${f.entryPoint} | ${n(f.cases)} | ${f.crashes} | ${n(f.rejected)} | ${Object.entries(f.reasons)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([r, k]) => `${r} ${n(k)}`)
          .join(', ')} | ${f.durationS} |`,
    ),
    '',
    '## Refusals and limits: what changed',
    '',
    '- An oversized publish of any size is acknowledged and its first `maxPayloadBytes` kept as a dead letter; the gateway no longer cuts the connection over it (a QoS 1 client resent it after every reconnect). In the raw-packet fuzz, *connection closed* now means another packet too large, bytes that are not MQTT, or no CONNECT within `connectTimeoutMs` (5 s).',
    '- Dead letters keep within `deadLetterMaxBytesPerVehicle` (16 MiB) and `deadLetterMaxBytes` (256 MiB); the oldest make room, counted.',
    '- A status document over 4 KiB, or without a plausible `at`, is refused as `bad_status`.',
    '- Connections not yet authenticated count against `maxConnections`; every refused or cut connection is logged and counted by reason, TLS failures included.',
    '- The agent sets aside a batch the link is lost over five times running, alone in flight: kept in its buffer, not resent until it restarts.',
    '',
    '## How to read this',
    '',
    '- *Lost* counts readings an agent committed to its buffer that never reached the operational store, checked seq by seq.',
    '- *Duplicates* are readings delivered more than once (a batch resent after a kill before its PUBACK); the store keeps one.',
    '- *Notifications per alert* is what a receiver honouring the `Idempotency-Key` (webhook) or the alert id (cab) acts on. A delivery a crash left in doubt is resent to such receivers, so the raw request count can be 2; the chaos log prints it.',
    '- Each scenario and fuzz target is a test in `npm test`; `npm run reliability -- --soak 10` runs them ten times larger.',
    '',
  ];
  return lines.join('\n');
}
