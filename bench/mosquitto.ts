import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, portOpen, tempDir, waitFor } from '../test/support/harness.js';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface MosquittoBroker {
  port: number;
  pid: number;
  version: string;
  stop(): Promise<void>;
}

/**
 * Mosquitto as the gateway's peer: loopback, anonymous, no persistence (it writes nothing
 * to disk, unlike the gateway, which is the comparison the benchmark makes), and no limit on
 * in-flight or queued messages so its own settings do not throttle the load.
 */
export async function startMosquitto(opts: { core?: number } = {}): Promise<MosquittoBroker> {
  if (!existsSync(MOSQUITTO)) throw new Error(`${MOSQUITTO} not found: install the Debian package mosquitto (npm run setup does)`);
  const dir = tempDir('fleet-bench-mosquitto-');
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_inflight_messages 0',
      'max_queued_messages 0',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const [cmd, args] = opts.core !== undefined ? ['taskset', ['-c', String(opts.core), MOSQUITTO, '-c', conf]] : [MOSQUITTO, ['-c', conf]];
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    `mosquitto on port ${port}`,
    () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
      return portOpen(port);
    },
    10_000,
  );
  const version = await new Promise<string>((resolve) => {
    const p = spawn(MOSQUITTO, ['-h'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('exit', () => resolve(/version (\S+)/.exec(out)?.[1] ?? 'unknown'));
  });
  return {
    port,
    // taskset execs mosquitto: the same process.
    pid: child.pid!,
    version,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
