import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request the console refuses: thrown anywhere in a handler, answered as JSON `{ error }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(text);
}

/** The token of `Authorization: Bearer <token>`, if the request has one. */
export function bearerToken(req: IncomingMessage): string | undefined {
  return /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** The client went away before its request was complete: nothing to answer, and nothing wrong here. */
export class ClientAborted extends Error {
  constructor() {
    super('the client closed the connection before its request was complete');
  }
}

export interface BodyLimits {
  maxBytes: number;
  /** From the handler's start: a client that trickles its body out holds nothing for long. */
  timeoutMs: number;
}

/** Reads a JSON body within `limits`; an empty body is `undefined`. */
export async function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  const text = await readText(req, limits);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
  }
}

function readText(req: IncomingMessage, { maxBytes, timeoutMs }: BodyLimits): Promise<string> {
  if (Number(req.headers['content-length'] ?? 0) > maxBytes) return Promise.reject(tooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Not a destroy on refusal: that would take the socket with it before the answer is sent.
    const settle = (err: Error | undefined) => {
      clearTimeout(timer);
      req.off('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
      else settle(tooLarge(maxBytes));
    };
    // The rest of the body is never read, so the connection cannot be reused.
    const timer = setTimeout(
      () => settle(new HttpError(408, `body: not received within ${timeoutMs / 1000} s`, { connection: 'close' })),
      timeoutMs,
    );
    req.on('data', onData);
    req.once('end', () => settle(undefined));
    req.once('error', () => settle(new ClientAborted()));
    req.once('close', () => req.complete || settle(new ClientAborted()));
  });
}

function tooLarge(maxBytes: number): HttpError {
  // The rest of the body is not read, so the connection cannot be reused.
  return new HttpError(413, `body exceeds ${maxBytes} bytes`, { connection: 'close' });
}
