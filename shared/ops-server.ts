import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from './log.js';

// Required, not imported: an ESM import of node:http reads every export, and its WebSocket
// getter loads Node's fetch and WebSocket implementation (undici): 2 to 3 MB of the truck
// agent's RSS (17 MB in a bare Node) for an ops server that serves two paths.
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface Health {
  ok: boolean;
  [detail: string]: unknown;
}

/** What /metrics serves: a registry, or several processes' registries summed (gateway/workers.ts). */
export type MetricsSource = Pick<Registry, 'contentType' | 'metrics'>;

/** Each long-running process owns one registry, so embedded parts in one process stay apart. */
export function createRegistry(component: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * `/healthz` (200 when healthy, 503 otherwise, JSON detail either way) and `/metrics`
 * (Prometheus text) for a process that has no HTTP server of its own. A health check or a
 * metric's collect() that throws is answered with 500 and its message, and logged: the
 * scraper learns why, and the process carries on.
 */
export async function startOpsServer(
  host: string,
  port: number,
  registry: MetricsSource,
  health: () => Health | Promise<Health>,
  log: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    void handleOps(url, registry, health)
      .catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        log.error({ url, err: message }, 'ops request failed');
        return { status: 500, type: 'application/json', body: JSON.stringify({ error: `${url}: ${message}` }) };
      })
      .then(({ status, type, body }) => {
        res.writeHead(status, { 'content-type': type });
        res.end(body);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

export async function handleOps(
  url: string,
  registry: MetricsSource,
  health: () => Health | Promise<Health>,
): Promise<{ status: number; type: string; body: string }> {
  if (url === '/metrics') return { status: 200, type: registry.contentType, body: await registry.metrics() };
  if (url === '/healthz') {
    const h = await health();
    return { status: h.ok ? 200 : 503, type: 'application/json', body: JSON.stringify(h) };
  }
  return { status: 404, type: 'application/json', body: JSON.stringify({ error: `no such path ${url}; try /healthz or /metrics` }) };
}

export const portOf = (server: Server) => (server.address() as AddressInfo).port;
