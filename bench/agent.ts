/**
 * The agent: its durable buffer and publisher (agent/buffer.ts, agent/publisher.ts, agent/link.ts)
 * in a child process pinned to core 0 (bench/agent-process.ts), publishing to `fleet gateway`
 * (embedded sink) pinned to core 1.
 *  - sustained: readings/s committed to SQLite (synchronous=FULL, 1,000 per commit), published
 *    (batches of 500, 8 in flight: the agent's defaults) and acknowledged; RSS at the end;
 *  - restart: a buffer holding 1,000,000 readings is opened by a fresh process: time from its
 *    spawn to the first publish, and its RSS;
 *  - drain: that backlog sent at most 100 publishes/s (AWS IoT Core's per-connection limit).
 * The agent process runs with the Node.js flags of hardware/pi/fleet-agent.service, as on a truck.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../test/support/harness.js';
import { benchScript, emit, round, runPart, spawnNode, startGatewayProcess, type NodeChild } from './support.js';
import { projectPath } from '../shared/package-root.js';

const USAGE = `Usage: node dist/bench/agent.js [--quick] [--help]

The agent's sustained readings/s on one core and its RSS; after a restart with a
1,000,000-reading backlog, the time to the first publish and the RSS; the backlog's drain
rate at no more than 100 publishes/s. One JSON line per figure.
`;

const AGENT_CORE = 0;
const GATEWAY_CORE = 1;
const BACKLOG = 1_000_000;
const PUBLISH_RATE = 100;
const DRAIN_BATCH = 500;

/** The Node.js flags the agent runs with on a Pi, read from the unit file that starts it there. */
function deployedNodeFlags(): string[] {
  const unit = readFileSync(projectPath('hardware', 'pi', 'fleet-agent.service'), 'utf8');
  const exec = /^ExecStart=\S*node((?:\s+--\S+)*)\s/m.exec(unit);
  if (!exec) throw new Error('hardware/pi/fleet-agent.service: no ExecStart running node');
  return exec[1]!.trim().split(/\s+/).filter(Boolean);
}
const NODE_FLAGS = deployedNodeFlags();

/** Runs one phase of bench/agent-process.ts and returns its line for `event`. */
async function phase(args: string[], event: string): Promise<{ line: Record<string, unknown>; child: NodeChild & { spawnedAt: number } }> {
  const child = spawnNode(benchScript('agent-process'), args, { core: AGENT_CORE, nodeArgs: NODE_FLAGS });
  const line = await child.next((l) => l.event === event, 300_000);
  const code = await child.exited;
  if (code !== 0) throw new Error(`agent-process ${args.join(' ')} exited with ${code}`);
  return { line, child };
}

runPart(
  'agent',
  USAGE,
  (quick) => (quick ? 90_000 : 300_000),
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
        note: `${round(Number(s.publishes) / Number(s.seconds))} publishes/s of up to 500 readings, synchronous=FULL`,
      });
      emit('agent', {
        figure: 'RSS at steady state',
        value: Number(s.rssMb),
        unit: 'MB',
        floor: 80,
        floorOp: '<=',
        note: `max ${String(s.rssMaxMb)} MB during the run`,
      });

      const backlogPath = join(dir, 'backlog.db');
      log(`filling a buffer with ${BACKLOG.toLocaleString('en')} readings`);
      await phase(['--phase', 'fill', '--buffer', backlogPath, '--readings', String(BACKLOG)], 'filled');
      log('restarting the agent on the backlog');
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
      const first = await child.next((l) => l.event === 'first-publish', 60_000);
      const firstMs = Number(first.at) - child.spawnedAt;
      log(`first publish ${firstMs} ms after the spawn, RSS ${String(first.rssMb)} MB`);
      const d = await child.next((l) => l.event === 'drained', (drainSeconds + 60) * 1000);
      if ((await child.exited) !== 0) throw new Error('the restarted agent failed');
      const drain = Number(d.acked) / Number(d.seconds);
      log(
        `drain: ${Math.round(drain).toLocaleString('en')} readings/s, ${round(Number(d.publishes) / Number(d.seconds))} publishes/s, RSS max ${String(d.rssMaxMb)} MB`,
      );
      const note = `${BACKLOG.toLocaleString('en')} readings buffered`;
      emit('agent', {
        figure: 'restart with backlog: first publish after process start',
        value: firstMs,
        unit: 'ms',
        floor: 2_000,
        floorOp: '<=',
        note,
      });
      emit('agent', {
        figure: 'restart with backlog: RSS',
        value: Number(d.rssMaxMb),
        unit: 'MB',
        floor: 80,
        floorOp: '<=',
        note: `${note}; max while draining (${String(first.rssMb)} MB at the first publish)`,
      });
      emit('agent', {
        figure: `backlog drain at <= ${PUBLISH_RATE} publishes/s`,
        value: Math.round(drain),
        unit: 'readings/s',
        floor: 20_000,
        note: `batches of ${DRAIN_BATCH}, ${round(Number(d.publishes) / Number(d.seconds))} publishes/s, ${Number(d.acked).toLocaleString('en')} readings in ${round(Number(d.seconds), 1)} s`,
      });
    } finally {
      await gateway.stop();
    }
  },
);
