/**
 * A replay rendered in a worker thread (started by bounded-replay.ts): the records of each
 * read of the file, formatted, posted as one text. At most a few texts wait unwritten: the
 * main thread answers each once it has written it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConfigError } from '../../shared/config.js';
import { replayFormatter } from './format.js';
import { replayBatches } from './replay.js';
import type { WorkerInput, WorkerMessage } from './bounded-replay.js';

const UNWRITTEN_AT_MOST = 4;

const port = parentPort!;
const { options, format, progress } = workerData as WorkerInput;
const post = (m: WorkerMessage) => port.postMessage(m);
let unwritten = 0;
let written: (() => void) | undefined;
port.on('message', () => {
  unwritten--;
  written?.();
});

try {
  const lines = replayFormatter(format);
  const onProgress = progress ? (rows: number) => post({ kind: 'progress', rows }) : undefined;
  for await (const records of replayBatches({ ...options, onProgress })) {
    let text = '';
    for (const r of records) for (const l of lines(r)) text += `${l}\n`;
    if (text === '') continue;
    post({ kind: 'text', text });
    unwritten++;
    while (unwritten >= UNWRITTEN_AT_MOST) await new Promise<void>((resolve) => (written = resolve));
  }
  post({ kind: 'done' });
} catch (err) {
  const e = err as Error;
  post({ kind: 'error', input: err instanceof ConfigError, message: e.message, stack: e.stack ?? String(err) });
}
port.unref();
