import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../shared/log.js';
import { createRegistry, handleOps, type Health } from '../../shared/ops-server.js';
import { FleetStore, type StoredAlert } from '../store.js';
import { AlertCounts } from './alert-counts.js';
import { EventStream } from './event-stream.js';
import { HttpError, hasBearer, readJsonBody, sendJson } from './http.js';
import { parseActor, parseAlertFilter } from './params.js';
import { StatusTracker } from './status-tracker.js';
import { vehicleViews, type VehicleStatusEntry } from './vehicles.js';

export interface ConsoleOptions {
  host: string;
  port: number;
  /** The detector's SQLite file; it may be written by another process at the same time (WAL). */
  storePath: string;
  mqttUrl: string;
  /** Password of the gateway's `service` user. */
  serviceToken: string;
  /** Bearer token for acknowledging and clearing alerts. */
  writeToken: string;
  /** A latest value older than this is shown as stale; 30 s by default. */
  staleAfterMs?: number;
}

/** tsc does not copy HTML into dist/, so the compiled module (dist/cloud/console/) reads it from the source tree. */
const PAGE_URL = new URL('../../../cloud/console/page.html', import.meta.url);
const MAX_BODY_BYTES = 4096;
const DEFAULT_STALE_AFTER_MS = 30_000;

type Action = 'acknowledge' | 'clear';

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: URLSearchParams;
  /** The route pattern's captures, URL-decoded. */
  params: string[];
}

interface Route {
  /** Metric label: a fixed name, never the raw path. */
  name: string;
  method: 'GET' | 'POST';
  path: RegExp;
  handle: (ctx: Context) => void | Promise<void>;
}

/**
 * The operator's console: a single page plus the JSON and event-stream API behind it.
 * Alerts and latest values come from the shared store, online/offline from the
 * vehicles' retained MQTT status. Reading is open; acknowledging and clearing need the
 * write token.
 */
export class ConsoleServer {
  readonly registry: Registry;
  private readonly store: FleetStore;
  private readonly counts: AlertCounts;
  private readonly events: EventStream;
  private readonly status: StatusTracker;
  private readonly routes: Route[];
  private readonly metrics;
  private server?: Server;
  private page?: Buffer;

  constructor(
    private readonly opts: ConsoleOptions,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.registry = registry ?? createRegistry('console');
    this.store = new FleetStore(opts.storePath);
    this.counts = new AlertCounts(this.store);
    this.events = new EventStream(this.store, log, { pollMs: 200, heartbeatMs: 15_000 });
    const link = { mqttUrl: opts.mqttUrl, serviceToken: opts.serviceToken };
    this.status = new StatusTracker(link, log, (update) => this.events.status(update));
    this.metrics = this.createMetrics();
    this.routes = this.createRoutes();
  }

  async start(): Promise<void> {
    this.page = await readFile(PAGE_URL);
    const server = createServer((req, res) => void this.dispatch(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, resolve);
    });
    // Started only once listening, so a port already in use leaves nothing running.
    this.events.start();
    this.status.start();
    this.log.info({ url: this.url }, 'console listening');
  }

  async stop(): Promise<void> {
    this.events.stop();
    await this.closeServer();
    await this.status.stop();
    this.store.close();
    this.log.info('console stopped');
  }

  get port(): number {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    return addr?.port ?? this.opts.port;
  }

  get url(): string {
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.port}`;
  }

  vehicleStatus(): Map<string, VehicleStatusEntry> {
    return this.status.snapshot();
  }

  health(): Health {
    const mqtt = { connected: this.status.connected };
    try {
      return { ok: true, store: { lastChangeId: this.store.lastChangeId() }, mqtt, eventClients: this.events.size };
    } catch (err) {
      return { ok: false, store: { error: (err as Error).message }, mqtt, eventClients: this.events.size };
    }
  }

  private createRoutes(): Route[] {
    const get = (name: string, path: RegExp, handle: Route['handle']): Route => ({ name, method: 'GET', path, handle });
    const post = (name: string, path: RegExp, handle: Route['handle']): Route => ({ name, method: 'POST', path, handle });
    return [
      get('page', /^\/$/, ({ res }) => this.sendPage(res)),
      get('vehicles', /^\/api\/vehicles$/, ({ res }) => sendJson(res, 200, this.vehicles())),
      get('alerts', /^\/api\/alerts$/, ({ res, query }) => sendJson(res, 200, this.store.listAlerts(parseAlertFilter(query)))),
      get('alert', /^\/api\/alerts\/([^/]+)$/, ({ res, params }) => sendJson(res, 200, this.alert(params[0]!))),
      post('ack', /^\/api\/alerts\/([^/]+)\/ack$/, (ctx) => this.lifecycle(ctx, 'acknowledge')),
      post('clear', /^\/api\/alerts\/([^/]+)\/clear$/, (ctx) => this.lifecycle(ctx, 'clear')),
      get('stats', /^\/api\/stats$/, ({ res }) => sendJson(res, 200, this.stats())),
      get('events', /^\/api\/events$/, ({ res }) => this.events.open(res)),
      get('ops', /^\/(?:healthz|metrics)$/, ({ res, path }) => this.ops(res, path)),
    ];
  }

  private createMetrics() {
    const registers = [this.registry];
    const status = this.status;
    const events = this.events;
    return {
      requests: new Counter({
        name: 'fleet_console_http_requests_total',
        help: 'HTTP requests by route and status code',
        labelNames: ['route', 'status'] as const,
        registers,
      }),
      actions: new Counter({
        name: 'fleet_console_alert_actions_total',
        help: 'Alerts acknowledged or cleared through the console',
        labelNames: ['action'] as const,
        registers,
      }),
      eventClients: new Gauge({
        name: 'fleet_console_event_clients',
        help: 'Open Server-Sent Events streams',
        registers,
        collect(this: Gauge) {
          this.set(events.size);
        },
      }),
      mqttConnected: new Gauge({
        name: 'fleet_console_mqtt_connected',
        help: '1 while the console is connected to the gateway',
        registers,
        collect(this: Gauge) {
          this.set(status.connected ? 1 : 0);
        },
      }),
    };
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let route = 'none';
    try {
      const { path, query } = splitUrl(req.url ?? '/');
      const { route: found, params } = this.match(req.method ?? 'GET', path);
      route = found.name;
      await found.handle({ req, res, path, query, params });
    } catch (err) {
      this.fail(res, err);
    } finally {
      this.metrics.requests.inc({ route, status: res.statusCode });
    }
  }

  private match(method: string, path: string): { route: Route; params: string[] } {
    const onPath = this.routes.filter((r) => r.path.test(path));
    if (onPath.length === 0) throw new HttpError(404, `no such path ${truncate(path)}`);
    const route = onPath.find((r) => r.method === method);
    if (!route) {
      const allowed = onPath.map((r) => r.method).join(', ');
      throw new HttpError(405, `${truncate(method)} is not allowed on ${truncate(path)}; use ${allowed}`, { allow: allowed });
    }
    return { route, params: route.path.exec(path)!.slice(1).map(decodeParam) };
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) return void res.destroy();
    if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message }, err.headers);
    this.log.error({ err: (err as Error).message }, 'request failed');
    sendJson(res, 500, { error: 'internal error; see the console log' });
  }

  private sendPage(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache',
      // Everything the page needs is inline or same-origin; nothing else may load.
      'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      'x-content-type-options': 'nosniff',
    });
    res.end(this.page);
  }

  private vehicles() {
    const sources = {
      latest: this.store.latestValues(),
      statuses: this.status.snapshot(),
      activeAlerts: this.counts.activeByVehicle(),
    };
    return vehicleViews(sources, Date.now(), this.opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS);
  }

  private alert(id: string): StoredAlert {
    const alert = this.store.getAlert(id);
    if (!alert) throw new HttpError(404, `no alert with id ${truncate(id)}`);
    return alert;
  }

  private stats() {
    return { ...this.store.counts(), alerts: this.counts.byState() };
  }

  private async lifecycle({ req, res, params }: Context, action: Action): Promise<void> {
    if (!hasBearer(req, this.opts.writeToken)) {
      this.log.warn({ action, remote: req.socket.remoteAddress }, 'write refused: missing or wrong token');
      throw new HttpError(401, 'a valid write token is required: send Authorization: Bearer <token>', {
        'www-authenticate': 'Bearer realm="fleet-console"',
      });
    }
    const by = parseActor(await readJsonBody(req, MAX_BODY_BYTES));
    const id = params[0]!;
    const at = Date.now();
    const alert = action === 'acknowledge' ? this.store.acknowledge(id, by, at) : this.store.clear(id, by, at);
    if (!alert) throw new HttpError(404, `no alert with id ${truncate(id)}`);
    this.metrics.actions.inc({ action });
    this.log.info({ vehicle: alert.vehicle, alertId: id, rule: alert.rule, action, by, state: alert.state }, 'operator action on alert');
    sendJson(res, 200, alert);
  }

  private async ops(res: ServerResponse, path: string): Promise<void> {
    const { status, type, body } = await handleOps(path, this.registry, () => this.health());
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  }

  /** Event streams never end by themselves, so open connections are closed rather than awaited. */
  private closeServer(): Promise<void> {
    const server = this.server;
    if (!server?.listening) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

function splitUrl(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf('?');
  return q < 0 ? { path: url, query: new URLSearchParams() } : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `path segment ${truncate(raw)} is not valid percent-encoding`);
  }
}

/** Echoing input back in an error is helpful up to a point. */
function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
