import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import type { WriteHealth } from '../../agent/commit-queue.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, getJson, kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { reportReliability, SOAK } from '../support/reliability.js';

const VEHICLE = 'disk-1';
/** Episodes of a full disk in a CI run; a soak multiplies them. */
const EPISODES = 2 * SOAK;
const FULL_MS = 3000;
/** Room for the buffer and a WAL that never reaches its 4 MB auto-checkpoint in this run. */
const FS_SIZE = '16m';

/** Writes zeros to `path` until the filesystem refuses: ENOSPC, as a full SD card gives. */
function fillDisk(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    // Big writes fill it fast; page-sized ones then take the last free pages.
    for (const chunk of [Buffer.alloc(1 << 20), Buffer.alloc(4096)]) {
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

/** One line of the agent's JSON log per match. */
const logged = (proc: Proc, msg: string) => proc.lines.filter((l) => l.includes(`"msg":"${msg}`)).length;

/**
 * The agent's data directory is a real 16 MB filesystem (a tmpfs) that the test fills to
 * the last page while the agent process commits 100 readings/s: SQLite gets ENOSPC. The
 * agent must stay up, say so on /healthz, hold the samples in memory, and commit them in
 * order once the filler is deleted.
 */
describe("chaos: the agent's disk full", () => {
  const dir = tempDir('fleet-chaos-');
  const dataDir = join(dir, 'agent');
  const filler = join(dataDir, 'filler');
  let mounted = false;
  let cloud: Cloud | undefined;
  let agent: Proc | undefined;

  beforeAll(() => {
    mkdirSync(dataDir);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_SIZE}`, 'tmpfs', dataDir], { stdio: 'pipe' });
      mounted = true;
    } catch (err) {
      process.stdout.write(`# agent-disk-full: cannot mount a tmpfs (needs root): ${(err as Error).message.split('\n')[0]}\n`);
    }
  });

  afterAll(async () => {
    if (agent) await kill(agent, 'SIGKILL');
    await cloud?.stop();
    // Lazy, so a file still open cannot keep the mount behind.
    if (mounted) execFileSync('umount', ['-l', dataDir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stays up, reports degraded health, and stores every reading once space returns', async (t) => {
    if (!mounted) return t.skip('needs root to mount a small tmpfs');
    const started = Date.now();
    cloud = await new Cloud({ dir }).start();
    const opsPort = await freePort();
    agent = runFleet([
      'agent',
      '--vehicle',
      VEHICLE,
      '--mqtt-url',
      cloud.mqttUrl,
      '--data-dir',
      dataDir,
      '--sim-hz',
      '20',
      '--ops-port',
      String(opsPort),
      '--reconnect-max-ms',
      '1000',
      '--drain-on-stop-ms',
      '15000',
    ]);
    const storage = async () => (await getJson<{ ok: boolean; storage: WriteHealth }>(`http://127.0.0.1:${opsPort}/healthz`)).body.storage;
    const stored = () => storedSeqs(cloud!.detector, VEHICLE).length;
    await waitFor('the agent publishing', () => stored() > 0, 15_000);

    let lastHealth: WriteHealth | undefined;
    for (let episode = 1; episode <= EPISODES; episode++) {
      assert.ok(fillDisk(filler) > 0, 'the filler took the free space');
      const full = await waitFor(
        `episode ${episode}: degraded health`,
        async () => {
          const s = await storage();
          return s.state === 'degraded' && s;
        },
        10_000,
      );
      assert.match(full.detail!, /^buffer disk full: \d+ samples held in memory$/);
      const storedWhenFull = stored();
      // The disk stays full, but the agent may free room itself: a checkpoint can fold its WAL
      // into free pages of the database and truncate it. Either way it stays up and healthy.
      let mostHeld = full.held;
      for (const until = Date.now() + FULL_MS; Date.now() < until; await sleep(200)) {
        const h = await getJson<{ ok: boolean; storage: WriteHealth }>(`http://127.0.0.1:${opsPort}/healthz`);
        assert.equal(h.status, 200, 'degraded, not unhealthy: a restart would free nothing and lose what is held');
        mostHeld = Math.max(mostHeld, h.body.storage.held);
      }
      assert.equal(agent.child.exitCode, null, `the agent is still running:\n${agent.stderr.join('\n')}`);

      rmSync(filler);
      lastHealth = await waitFor(
        `episode ${episode}: recovery`,
        async () => {
          const s = await storage();
          return s.state === 'ok' && s;
        },
        10_000,
      );
      await waitFor(`episode ${episode}: the held samples published`, () => stored() > storedWhenFull + mostHeld, 10_000);
      await sleep(1000);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    const writeErrors = Number(/fleet_agent_buffer_write_errors_total\{[^}]*code="SQLITE_FULL"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    await kill(agent, 'SIGTERM');
    assert.equal(agent.child.exitCode, 0, agent.stderr.join('\n'));
    const episodes = logged(agent, 'buffer write failed (disk full)');
    assert.ok(episodes >= EPISODES, `${episodes} episodes logged`);
    assert.equal(logged(agent, 'buffer writable again'), episodes, 'each episode ended');
    assert.ok(writeErrors > episodes, `one error logged per episode, not per refused write (${writeErrors} refused)`);

    const buffer = new Database(join(dataDir, `${VEHICLE}.buffer.db`), { readonly: true });
    const committed = Number((buffer.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: number }).value) - 1;
    const leftInBuffer = (buffer.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
    buffer.close();
    assert.equal(leftInBuffer, 0, 'the clean stop sent everything');
    const dropped = lastHealth!.dropped;
    assert.equal(dropped, 0, 'the memory hold was never full');
    await waitFor(`all ${committed} readings stored`, () => stored() === committed, 15_000);
    assert.deepEqual(
      storedSeqs(cloud.detector, VEHICLE),
      Array.from({ length: committed }, (_, i) => i + 1),
      'no seq gap from a refused commit',
    );

    const produced = committed + dropped;
    const { readingsStored, duplicates } = await cloud.detector.store.counts();
    const lost = produced - readingsStored;
    process.stdout.write(
      `# agent-disk-full: disk filled ${EPISODES} times, ${episodes} episodes (more when the agent freed room itself and used it up), ${writeErrors} refused writes\n`,
    );
    reportReliability({
      kind: 'chaos',
      scenario: 'agent disk full',
      kills: {},
      produced,
      stored: readingsStored,
      lost,
      duplicates,
      alertsExpected: 0,
      alertsRaised: (await cloud.detector.store.listAlerts()).length,
      notificationsPerAlert: null,
      durationS: Math.round((Date.now() - started) / 1000),
    });
    assert.equal(lost, 0);
  });
});
