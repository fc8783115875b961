/**
 * The agent. Its memory and start are those of `fleet agent` itself, started as
 * hardware/pi/fleet-agent.service starts it (bench/fleet-agent-process.ts), publishing to
 * `fleet gateway` (embedded sink) pinned to core 1:
 *  - steady state: RSS after it has run a while, and the time from its spawn to its first sample;
 *  - restart with a backlog: the same on a buffer holding 1,000,000 readings, RSS at most while it drains them.
 * Its throughput is that of its buffer and publisher (agent/buffer.ts, agent/publisher.ts,
 * agent/link.ts) in a child process pinned to core 0 (bench/agent-process.ts), with the unit's Node.js flags:
 *  - sustained: readings/s committed to SQLite (synchronous=FULL, 1,000 per commit), published
 *    (batches of 500, 8 in flight: the agent's defaults) and acknowledged;
 *  - drain: the backlog sent at most 100 publishes/s (AWS IoT Core's per-connection limit).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../test/support/harness.js';
import { deployedAgentCommand, runFleetAgent, type AgentRun } from './fleet-agent-process.js';
import { benchScript, emit, round, runPart, spawnNode, startGatewayProcess, type NodeChild } from './support.js';

const USAGE = `Usage: node dist/bench/agent.js [--quick] [--help]

\`fleet agent\` as the Pi's unit starts it: RSS at steady state and after a restart with a
1,000,000-reading backlog, the time from its start to its first sample; the agent's
sustained readings/s on one core; the backlog's drain rate at no more than 100
publishes/s. One JSON line per figure.
`;

const AGENT_CORE = 0;
const GATEWAY_CORE = 1;
const BACKLOG = 1_000_000;
const PUBLISH_RATE = 100;
const DRAIN_BATCH = 500;
/** bench/agent-process.ts's vehicle: the real agent takes over the buffers it fills. */
const VEHICLE = 'bench-truck';
const NODE_FLAGS = deployedAgentCommand().nodeFlags;
const MEMORY_FLOOR_MB = 64;
const FIRST_SAMPLE_FLOOR_MS = 300;

/** Runs one phase of bench/agent-process.ts and returns its line for `event`. */
async function phase(args: string[], event: string): Promise<{ line: Record<string, unknown>; child: NodeChild & { spawnedAt: number } }> {
  const child = spawnNode(benchScript('agent-process'), args, { core: AGENT_CORE, nodeArgs: NODE_FLAGS });
  const line = await child.next((l) => l.event === event, 300_000);
  const code = await child.exited;
  if (code !== 0) throw new Error(`agent-process ${args.join(' ')} exited with ${code}`);
  return { line, child };
}

/** A buffer directory of its own for one run of fleet agent. */
function agentDir(dir: string, name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** RSS and first sample of one run of fleet agent, against their floors. */
function memoryFigures(when: string, run: AgentRun, note: string): void {
  emit('agent', {
    figure: `fleet agent, ${when}: RSS`,
    value: when === 'steady state' ? run.rssMb : run.rssMaxMb,
    unit: 'MB',
    floor: MEMORY_FLOOR_MB,
    floorOp: '<=',
    note: `${note}; node ${NODE_FLAGS.join(' ')}`,
  });
  emit('agent', {
    figure: `fleet agent, ${when}: first sample after process start`,
    value: run.firstSampleMs,
    unit: 'ms',
    floor: FIRST_SAMPLE_FLOOR_MS,
    floorOp: '<=',
    note: 'spawn to the first reading it sampled committed to its SQLite buffer',
  });
}

runPart(
  'agent',
  USAGE,
  (quick) => (quick ? 150_000 : 420_000),
  async (o, log) => {
    const dir = tempDir('fleet-bench-agent-');
    const gateway = await startGatewayProcess({ core: GATEWAY_CORE });
    try {
      const seconds = o.quick ? 5 : 20;
      log(`sustained: ${seconds} s against the gateway on ${gateway.url}, node ${NODE_FLAGS.join(' ')} as in fleet-agent.service`);
      const { line: s } = await phase(
        ['--phase', 'sustained', '--buffer', join(dir, 'sustained.db'), '--url', gateway.url, '--seconds', String(seconds)],
        'sustained',
      );
      const rate = Number(s.acked) / Number(s.seconds);
      log(
        `sustained: ${Math.round(rate).toLocaleString('en')} readings/s acknowledged (${Number(s.committed).toLocaleString('en')} committed), RSS ${String(s.rssMb)} MB`,
      );
      emit('agent', {
        figure: 'sustained readings/s, committed + published + acknowledged, one core',
        value: Math.round(rate),
        unit: 'readings/s',
        floor: 20_000,
        note: `${round(Number(s.publishes) / Number(s.seconds))} publishes/s of up to 500 readings, synchronous=FULL; the buffer, link and publisher alone`,
      });
      const agentSeconds = o.quick ? 10 : 60;
      log(
        `fleet agent: ${agentSeconds} s from its first sample, node ${NODE_FLAGS.join(' ')} as in fleet-agent.service, simulated sensors`,
      );
      const steady = await runFleetAgent({
        dir: agentDir(dir, 'steady'),
        vehicle: VEHICLE,
        url: gateway.url,
        seconds: agentSeconds,
        core: AGENT_CORE,
      });
      log(`fleet agent: first sample ${steady.firstSampleMs} ms after the spawn, RSS ${steady.rssMb} MB (max ${steady.rssMaxMb} MB)`);
      memoryFigures('steady state', steady, `simulated sensors, agent.sample.json otherwise; after ${agentSeconds} s`);

      const backlogPath = join(dir, 'backlog.db');
      log(`filling a buffer with ${BACKLOG.toLocaleString('en')} readings`);
      await phase(['--phase', 'fill', '--buffer', backlogPath, '--readings', String(BACKLOG)], 'filled');
      const restartDir = agentDir(dir, 'restart');
      for (const suffix of ['', '-wal'])
        if (existsSync(backlogPath + suffix)) copyFileSync(backlogPath + suffix, join(restartDir, `${VEHICLE}.buffer.db${suffix}`));
      log('restarting fleet agent on the backlog');
      const restarted = await runFleetAgent({
        dir: restartDir,
        vehicle: VEHICLE,
        url: gateway.url,
        seconds: agentSeconds,
        core: AGENT_CORE,
      });
      log(
        `fleet agent on the backlog: first sample ${restarted.firstSampleMs} ms after the spawn, RSS max ${restarted.rssMaxMb} MB, ${restarted.bufferedAfter.toLocaleString('en')} of ${restarted.bufferedBefore.toLocaleString('en')} readings left`,
      );
      memoryFigures(
        `restart with a ${BACKLOG.toLocaleString('en')}-reading backlog`,
        restarted,
        `max while draining for ${agentSeconds} s (${(restarted.bufferedBefore - restarted.bufferedAfter).toLocaleString('en')} readings sent)`,
      );

      log('the buffer and publisher alone, draining the backlog');
      const drainSeconds = o.quick ? 6 : 60;
      const child = spawnNode(
        benchScript('agent-process'),
        [
          '--phase',
          'restart',
          '--buffer',
          backlogPath,
          '--url',
          gateway.url,
          '--seconds',
          String(drainSeconds),
          '--batch',
          String(DRAIN_BATCH),
          '--publish-rate',
          String(PUBLISH_RATE),
        ],
        { core: AGENT_CORE, nodeArgs: NODE_FLAGS },
      );
      const d = await child.next((l) => l.event === 'drained', (drainSeconds + 60) * 1000);
      if ((await child.exited) !== 0) throw new Error('the restarted agent failed');
      const drain = Number(d.acked) / Number(d.seconds);
      log(
        `drain: ${Math.round(drain).toLocaleString('en')} readings/s, ${round(Number(d.publishes) / Number(d.seconds))} publishes/s, RSS max ${String(d.rssMaxMb)} MB`,
      );
      emit('agent', {
        figure: `backlog drain at <= ${PUBLISH_RATE} publishes/s`,
        value: Math.round(drain),
        unit: 'readings/s',
        floor: 20_000,
        note: `the buffer, link and publisher alone; batches of ${DRAIN_BATCH}, ${round(Number(d.publishes) / Number(d.seconds))} publishes/s, ${Number(d.acked).toLocaleString('en')} readings in ${round(Number(d.seconds), 1)} s`,
      });
    } finally {
      await gateway.stop();
    }
  },
);
