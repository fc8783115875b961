import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep, tempDir } from './harness.js';
import { ROOT } from './paths.js';

const MOTO_SH = join(ROOT, 'scripts/services/moto.sh');
const MOTO_SERVER = join(ROOT, '.cache/moto-venv/bin/moto_server');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface MotoServer {
  endpoint: string;
  stop(): Promise<void>;
}

/** A request as moto's recorder kept it (`/moto-api/recorder/...`). */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * A moto server of its own on a free port, so parallel runs never share state. The venv is
 * fetched on first use (one pip install, then cached in .cache/).
 */
export async function startMoto(): Promise<MotoServer> {
  await promisify(execFile)('bash', [MOTO_SH, 'fetch'], { cwd: ROOT, timeout: 300_000 });
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(MOTO_SERVER, ['-H', '127.0.0.1', '-p', String(port)], {
    // The recorder's default file is relative to the working directory: keep it out of the repo.
    env: { ...process.env, MOTO_RECORDER_FILEPATH: join(tempDir('moto-'), 'recording.jsonl') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // moto logs every request on stderr: drain it (a full pipe would stall the server), keep the tail.
  const tail: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    tail.push(chunk);
    if (tail.length > 20) tail.shift();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${tail.join('')}`);
    const up = await fetch(`${endpoint}/moto-api/config`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { endpoint, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto_server did not answer on ${endpoint} within ${START_TIMEOUT_MS} ms: ${tail.join('')}`);
    }
    await sleep(100);
  }
}

/** moto keeps IoT data-plane publishes only in memory; its request recorder is how a server-mode test sees them. */
export async function startRecording(endpoint: string): Promise<void> {
  await motoApi(endpoint, 'recorder/reset-recording');
  await motoApi(endpoint, 'recorder/start-recording');
}

export async function recordedRequests(endpoint: string): Promise<RecordedRequest[]> {
  const text = await (await motoApi(endpoint, 'recorder/download-recording', 'GET')).text();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const e = JSON.parse(line) as {
        method: string;
        url: string;
        headers: Record<string, string>;
        body: string | null;
        body_encoded: boolean;
      };
      return { method: e.method, url: e.url, headers: e.headers, body: Buffer.from(e.body ?? '', e.body_encoded ? 'base64' : 'utf8') };
    });
}

async function motoApi(endpoint: string, path: string, method = 'POST'): Promise<Response> {
  const res = await fetch(`${endpoint}/moto-api/${path}`, { method });
  if (!res.ok) throw new Error(`moto-api ${path}: HTTP ${res.status}`);
  return res;
}
