import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { projectPath } from '../shared/package-root.js';
import { MB, round, sleep, spawnNode } from './support.js';

/** The Node.js flags and the script the agent runs with on a Pi, read from the unit file that starts it there. */
export function deployedAgentCommand(): { nodeFlags: string[]; script: string } {
  const unit = readFileSync(projectPath('hardware', 'pi', 'fleet-agent.service'), 'utf8');
  const exec = /^ExecStart=\S*node((?:\s+--\S+)*)\s+(\S+)\s+agent\s/m.exec(unit);
  if (!exec) throw new Error('hardware/pi/fleet-agent.service: no ExecStart running node … agent');
  return { nodeFlags: exec[1]!.trim().split(/\s+/).filter(Boolean), script: exec[2]! };
}

/** The script of the unit's ExecStart, as it sits in this checkout (/opt/fleet is where install.sh puts it). */
function localScript(script: string): string {
  if (!script.startsWith('/opt/fleet/'))
    throw new Error(`hardware/pi/fleet-agent.service runs ${script}, not a script install.sh puts in /opt/fleet`);
  return projectPath(...script.slice('/opt/fleet/'.length).split('/'));
}

export interface AgentRun {
  /** Spawn to the first reading this process sampled committed to its buffer (seen by a reader of the SQLite file). */
  firstSampleMs: number;
  /** VmRSS at the end of the run, and its highest sample over the run (every 100 ms). */
  rssMb: number;
  rssMaxMb: number;
  /** Readings in the buffer at the start and at the end. */
  bufferedBefore: number;
  bufferedAfter: number;
}

/** The buffer's newest seq, or undefined while the agent has not made its tables yet. */
function newestSeq(db: Database.Database): number | undefined {
  try {
    return db.prepare('SELECT coalesce(max(seq), 0) FROM readings').pluck().get() as number;
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return undefined;
    throw err;
  }
}

const rssOf = (pid: number) => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

/**
 * `fleet agent` as hardware/pi/fleet-agent.service starts it (its node flags and ExecStart's
 * script, `--config FILE`), with hardware/pi/agent.sample.json as the config but simulated
 * sensors (no GPS, OBD or 1-Wire here), the given gateway and buffer directory. Runs for
 * `seconds` after its first sample, then SIGTERM.
 */
export async function runFleetAgent(opts: {
  dir: string;
  vehicle: string;
  url: string;
  seconds: number;
  core?: number;
}): Promise<AgentRun> {
  const { nodeFlags, script } = deployedAgentCommand();
  const sample = JSON.parse(readFileSync(projectPath('hardware', 'pi', 'agent.sample.json'), 'utf8')) as Record<string, unknown>;
  const config = {
    ...sample,
    vehicle: opts.vehicle,
    mqttUrl: opts.url,
    sensors: 'simulated',
    dataDir: opts.dir,
    opsPort: 0,
    drainOnStopMs: 0,
  };
  const configFile = join(opts.dir, 'agent.json');
  writeFileSync(configFile, JSON.stringify(config));
  const bufferFile = join(opts.dir, `${opts.vehicle}.buffer.db`);
  const stats = () => {
    if (!existsSync(bufferFile)) return { maxSeq: 0, readings: 0 };
    const db = new Database(bufferFile, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT coalesce(max(seq), 0) AS maxSeq, count(*) AS readings FROM readings').get() as {
        maxSeq: number;
        readings: number;
      };
    } finally {
      db.close();
    }
  };
  const before = stats();
  const agent = spawnNode(localScript(script), ['agent', '--config', configFile], {
    core: opts.core,
    nodeArgs: nodeFlags,
    env: { FLEET_LOG_LEVEL: 'warn', NODE_ENV: 'production' },
  });
  const pid = agent.child.pid!;
  let rssMax = 0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssOf(pid))), 100);
  try {
    // The newest seq is an index lookup however long the backlog: polled every 5 ms, from one connection once the file is there.
    let db: Database.Database | undefined;
    let firstSampleAt = 0;
    const deadline = Date.now() + 30_000;
    while (firstSampleAt === 0) {
      if (agent.child.exitCode !== null) throw new Error(`fleet agent exited with ${agent.child.exitCode}`);
      if (Date.now() > deadline) throw new Error('fleet agent committed no sample within 30 s');
      if (db === undefined && existsSync(bufferFile)) db = new Database(bufferFile, { readonly: true, fileMustExist: true });
      const newest = db === undefined ? undefined : newestSeq(db);
      if (newest !== undefined && newest > before.maxSeq) firstSampleAt = Date.now();
      else await sleep(5);
    }
    db?.close();
    await sleep(opts.seconds * 1000);
    const rss = rssOf(pid);
    agent.child.kill('SIGTERM');
    if ((await agent.exited) !== 0) throw new Error('fleet agent did not stop cleanly on SIGTERM');
    return {
      firstSampleMs: firstSampleAt - agent.spawnedAt,
      rssMb: round(rss / MB, 1),
      rssMaxMb: round(Math.max(rssMax, rss) / MB, 1),
      bufferedBefore: before.readings,
      bufferedAfter: stats().readings,
    };
  } finally {
    clearInterval(sampler);
    agent.child.kill('SIGKILL');
  }
}
