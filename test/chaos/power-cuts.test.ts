import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Random } from '../../simulators/random.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, sleep, tempDir, waitFor } from '../support/harness.js';
import { builtImage, flashCopy, PiVm, provisionAgent } from '../support/pi-vm.js';
import { reportReliability, SOAK } from '../support/reliability.js';
import { queryValue } from '../support/sqlite.js';

/** 5 in npm test; `npm run reliability` cuts 100 times (× its soak), or as many as its --power-cuts says. */
const CUTS = Number(process.env.RELIABILITY_POWER_CUTS ?? (process.env.RELIABILITY_OUT ? 100 * SOAK : 5));
const VEHICLE = 'pc-1';
const COMMIT_INTERVAL_MS = 50;
const MINUTE = 60_000;

/** What one cut left behind, in the guest's clock. */
interface Cut {
  boot: number;
  cutAt: number;
  bootedAt: number;
}

/**
 * The image's power pulled at random moments: QEMU killed with its disk opened without host
 * caching, so what the guest had not written out is gone as on a Pi whose supply dies. The
 * agent samples its simulated truck and publishes to the gateway on this machine throughout.
 * After every boot the buffer must open as it was and seq go on; at the end every reading the
 * agent committed reaches the store exactly once. Readings taken but not yet committed when
 * the power went (at most one group-commit interval's) are counted, as the design accepts them.
 */
describe(`the Raspberry Pi image with its power cut ${CUTS} times while the agent samples and publishes`, () => {
  const image = builtImage();
  const dir = tempDir('fleet-power-cuts-');
  const disk = join(dir, 'card.img');
  let cloud: Cloud;
  let vm: PiVm;
  const seqs = () => storedSeqs(cloud.detector, VEHICLE);
  const store = () => cloud.detector.store.location;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
    flashCopy(image, disk);
    provisionAgent(image, disk, {
      vehicle: VEHICLE,
      gatewayPort: Number(new URL(cloud.mqttUrl).port),
      sensors: 'simulated',
      simHz: 5,
      synchronous: 'FULL',
      commitIntervalMs: COMMIT_INTERVAL_MS,
      reconnectMaxMs: 2000,
    });
    vm = new PiVm({ image, disk, dir, opsPort: await freePort() });
  });

  afterAll(async () => {
    await vm?.powerCut();
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The guest's clock minus this machine's, in ms: QEMU's RTC gives the guest whole seconds at boot. */
  async function guestClockOffset(): Promise<number> {
    const t0 = Date.now();
    const guest = Number(await vm.sh('date +%s%3N'));
    return guest - (t0 + Date.now()) / 2;
  }

  /** Boots, and waits until the agent, its buffer opened, has published something new. */
  async function bootAndPublish(boot: number): Promise<{ offset: number; bootedAt: number }> {
    await vm.boot();
    const offset = await guestClockOffset();
    const bootedAt = Date.now() + offset;
    const before = seqs().at(-1) ?? 0;
    await waitFor(`boot ${boot}: the agent publishing (console ${vm.consoleLog})`, () => (seqs().at(-1) ?? 0) > before, 3 * MINUTE, 500);
    const unit = await vm.sh('systemctl show fleet-agent -p NRestarts --value');
    assert.equal(unit, '0', `boot ${boot}: the agent started at the first try`);
    // pino levels 50 (error) and 60 (fatal): a buffer that did not open cleanly says so.
    const errors = await vm.sh(`journalctl -b -u fleet-agent -o cat | grep -E '"level":(50|60)' || true`);
    assert.equal(errors, '', `boot ${boot}: the agent logged errors`);
    return { offset, bootedAt };
  }

  it(
    'opens the buffer cleanly after every cut, continues its seqs, and stores every committed reading once',
    async () => {
      const started = Date.now();
      const rng = new Random(1717);
      const cuts: Cut[] = [];
      for (let boot = 1; boot <= CUTS; boot++) {
        const { offset, bootedAt } = await bootAndPublish(boot);
        await sleep(300 + rng.next() * 4000);
        const cutAt = Date.now() + offset;
        await vm.powerCut();
        cuts.push({ boot, cutAt, bootedAt });
        process.stderr.write(`power cut ${boot}/${CUTS}: ${seqs().length} readings stored so far\n`);
      }

      // The last boot: the agent sends what it holds, then a clean stop drains the rest.
      await bootAndPublish(CUTS + 1);
      await waitFor('the buffer sent', async () => (await vm.agentHealth())?.buffered === 0, 3 * MINUTE, 500);
      await vm.sh('systemctl stop fleet-agent', 60_000);
      const buffer = JSON.parse(
        await vm.sh(
          `/usr/local/lib/nodejs/fleet/bin/node -e "const D = require('/opt/fleet/node_modules/better-sqlite3'); ` +
            `const d = new D('/var/lib/fleet/${VEHICLE}.buffer.db', { readonly: true }); ` +
            `console.log(JSON.stringify({ next: Number(d.prepare(\\"SELECT value FROM meta WHERE key = 'next_seq'\\").pluck().get()), ` +
            `left: d.prepare('SELECT count(*) FROM readings').pluck().get() }))"`,
          2 * MINUTE,
        ),
      ) as { next: number; left: number };
      await vm.shutdown();

      const committed = buffer.next - 1;
      assert.equal(buffer.left, 0, 'the clean stop sent everything');
      await waitFor(`all ${committed} committed readings stored`, () => seqs().length >= committed, MINUTE, 500);
      // Seqs went on after every cut (a reused seq would be a second reading under one key,
      // dropped by the store: the count below would fall short), and none is missing.
      assert.deepEqual(
        seqs(),
        Array.from({ length: committed }, (_, i) => i + 1),
        'every committed reading stored, once',
      );
      const { duplicates } = await cloud.detector.store.counts();

      // What each cut took that was never committed: the readings of the window between the
      // last one stored from that boot and the cut, at that boot's own rate.
      const windows = cuts.map((c) => {
        const last =
          queryValue<number>(store(), 'SELECT max(ts) FROM readings WHERE vehicle = ? AND ts < ?', VEHICLE, c.cutAt + 1000) ?? c.bootedAt;
        const n =
          queryValue<number>(
            store(),
            'SELECT count(*) FROM readings WHERE vehicle = ? AND ts BETWEEN ? AND ?',
            VEHICLE,
            c.bootedAt,
            last,
          ) ?? 0;
        const rate = n / Math.max(1, (last - c.bootedAt) / 1000);
        const windowMs = Math.max(0, c.cutAt - last);
        return { windowMs, uncommitted: Math.round((windowMs / 1000) * rate) };
      });
      const maxWindowMs = Math.max(...windows.map((w) => w.windowMs));
      process.stderr.write(
        `power cuts: windows between the last stored reading and the cut (ms): ${windows.map((w) => Math.round(w.windowMs)).join(', ')}\n`,
      );
      // Bounded: a commit every 50 ms, an fsync each; TCG emulation and the clock reading add slack.
      assert.ok(maxWindowMs < 3000, `at most ${maxWindowMs} ms of readings lost at a cut`);

      reportReliability({
        kind: 'power',
        scenario: 'Raspberry Pi image under QEMU, power cut while sampling',
        cuts: CUTS,
        committed,
        acknowledged: new Set(seqs()).size,
        stored: seqs().length,
        lost: committed - new Set(seqs()).size,
        duplicates,
        uncommittedAtCuts: windows.reduce((a, w) => a + w.uncommitted, 0),
        maxWindowMs: Math.round(maxWindowMs),
        commitIntervalMs: COMMIT_INTERVAL_MS,
        durationS: Math.round((Date.now() - started) / 1000),
      });
    },
    (CUTS + 2) * 4 * MINUTE,
  );
});
