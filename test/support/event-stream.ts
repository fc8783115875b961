export interface SseEvent {
  event: string;
  data: any;
}

/** Reads `/api/events` in the background, collecting parsed events until closed. */
export function openEvents(url: string, headers: Record<string, string> = {}): { events: SseEvent[]; close(): void } {
  const events: SseEvent[] = [];
  const abort = new AbortController();
  void (async () => {
    const res = await fetch(`${url}/api/events`, { signal: abort.signal, headers });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
    }
  })().catch(() => undefined);
  return { events, close: () => abort.abort() };
}
