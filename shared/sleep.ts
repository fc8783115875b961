/**
 * Resolves after `ms`, or as soon as `signal` aborts; never rejects. Its timer goes with it,
 * so a component that aborts its waits on stop leaves nothing to keep the process alive or
 * to wake it up later.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
