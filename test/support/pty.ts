import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** A kernel pseudo-terminal pair: a serial cable whose two ends are paths. */
export interface PtyPair {
  /** One end, e.g. for the driver under test. */
  a: string;
  /** The other end, e.g. for a device emulator. */
  b: string;
  /** Unplugs the cable: socat exits and both paths vanish. Safe to call twice. */
  stop(): Promise<void>;
  /** Plugs it back in under the same paths (new kernel ptys behind them). */
  restart(): Promise<void>;
}

const READY_MS = 5000;
const EXIT_MS = 2000;

/**
 * `socat pty,raw,echo=0,link=<dir>/<name>-a pty,raw,echo=0,link=<dir>/<name>-b`, resolved once
 * socat is relaying (both links exist and it logged its transfer loop). The caller stops it.
 */
export async function ptyPair(dir: string, name: string): Promise<PtyPair> {
  const a = join(dir, `${name}-a`);
  const b = join(dir, `${name}-b`);
  let child: ChildProcess | undefined;
  // A test that dies before `stop()` must not leave socat running behind it.
  const killOnExit = () => child?.kill('SIGKILL');
  process.on('exit', killOnExit);

  const stop = async () => {
    const c = child;
    child = undefined;
    if (c) await terminate(c);
    // socat removes its links on SIGTERM, but not when it had to be killed.
    for (const p of [a, b]) rmSync(p, { force: true });
  };
  child = await startSocat(a, b);
  return {
    a,
    b,
    stop: async () => {
      await stop();
      process.off('exit', killOnExit);
    },
    restart: async () => {
      await stop();
      child = await startSocat(a, b);
    },
  };
}

async function startSocat(a: string, b: string): Promise<ChildProcess> {
  const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  let exited: string | undefined;
  child.stderr.setEncoding('utf8').on('data', (s: string) => (log += s));
  child.once('error', (err) => (exited = err.message));
  child.once('exit', (code, signal) => (exited ??= `exited with ${signal ?? code}`));
  const deadline = Date.now() + READY_MS;
  while (!(existsSync(a) && existsSync(b) && log.includes('starting data transfer loop'))) {
    if (exited !== undefined || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`socat did not set up ${a} <-> ${b} (${exited ?? `not ready after ${READY_MS} ms`}): ${log.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_MS);
  await exited;
  clearTimeout(timer);
}
