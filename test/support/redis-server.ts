import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, portOpen, tempDir, waitFor } from './harness.js';

/** Debian's redis-server on a free port of 127.0.0.1, keeping nothing on disk. */
export class RedisServer {
  private child?: ChildProcess;
  private readonly dir = tempDir('fleet-redis-');
  port = 0;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it, on the same port when it ran before. */
  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no'];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitFor('redis-server listening', () => portOpen(this.port), 20_000, 50);
    return this;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
