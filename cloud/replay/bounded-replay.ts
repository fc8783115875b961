import { Worker } from 'node:worker_threads';
import { ConfigError } from '../../shared/config.js';
import type { ReplayFormat } from './format.js';
import type { ReplayOptions } from './replay.js';

export interface WorkerInput {
  options: Omit<ReplayOptions, 'onProgress'>;
  format: ReplayFormat;
  progress: boolean;
}

export type WorkerMessage =
  | { kind: 'text'; text: string }
  | { kind: 'progress'; rows: number }
  | { kind: 'done' }
  | { kind: 'error'; input: boolean; message: string; stack: string };

/**
 * V8 sizes a process's heap for throughput: scoring a million rows grew this one's young
 * generation to 60 MB and its reserved heap to 150 MB for 15 MB live. A worker's heap can be
 * bounded where the process's flags cannot be changed by the command running in it, and a
 * young generation that fits the CPU's caches is faster too. What a replay keeps is a few
 * windows per series, not the file, so the bounds hold for a file of any length.
 */
const HEAP_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 256 };

/**
 * The replay's output, formatted, a read of the file at a time, computed in a worker thread
 * with a bounded heap. The next text is asked for only once the caller has taken this one,
 * so a slow reader of the output holds the replay back instead of filling memory.
 */
export async function* boundedReplay(options: ReplayOptions, format: ReplayFormat): AsyncGenerator<string> {
  const { onProgress, ...rest } = options;
  const input: WorkerInput = { options: rest, format, progress: onProgress !== undefined };
  const worker = new Worker(new URL('./replay-worker.js', import.meta.url), { workerData: input, resourceLimits: HEAP_LIMITS });
  const inbox: WorkerMessage[] = [];
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const woken = () => {
    wake?.();
    wake = undefined;
  };
  worker.on('message', (m: WorkerMessage) => {
    inbox.push(m);
    woken();
  });
  // An error the worker did not catch itself: out of its heap, or a bug.
  worker.on('error', (err: Error) => {
    failure = err;
    woken();
  });
  worker.on('exit', woken);
  try {
    for (;;) {
      const m = inbox.shift();
      if (m === undefined) {
        if (failure) throw failure;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (m.kind === 'done') return;
      if (m.kind === 'error') throw m.input ? new ConfigError(m.message) : Object.assign(new Error(m.message), { stack: m.stack });
      if (m.kind === 'progress') onProgress?.(m.rows);
      else {
        yield m.text;
        worker.postMessage('written');
      }
    }
  } finally {
    await worker.terminate();
  }
}
