import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../shared/log.js';
import { DEFAULT_MAX_CONNECTIONS, DEFAULT_STALE_AFTER_MS, type ConsoleConfig } from '../console-config.js';
import { DEFAULT_RULES } from '../../shared/rules/default-rules.js';
import type { RuleSet } from '../../shared/rules/rule-set.js';
import { createRegistry, handleOps, type Health } from '../../shared/ops-server.js';
import { latestByVehicle, type FleetStore } from '../store.js';
import { openStore } from '../store/open-store.js';
import type { StoredAlert } from '../store/stored-alert.js';
import { CLEARED_COOKIE, ConsoleAuth, requireSameOrigin, sessionCookie, type Principal } from './auth.js';
import { EventStream } from './event-stream.js';
import { ClientAborted, HttpError, readJsonBody, sendJson, type BodyLimits } from './http.js';
import { LatestChanges } from './latest-changes.js';
import { parseActor, parseAlertFilter, parseSignIn, parseVehicle } from './params.js';
import { parseUsers } from './passwords.js';
import { ReadingHistory } from './reading-history.js';
import { SignInThrottle } from './sign-in-throttle.js';
import { StaticFiles } from './static-files.js';
import { StatusTracker } from './status-tracker.js';
import { vehicleViews, type VehicleStatusEntry } from './vehicles.js';

/**
 * The console's settings as console-config.ts declares them; those with a default may be
 * left out (tests build servers with a few), and the rules arrive read from their file.
 */
export type ConsoleOptions = Pick<ConsoleConfig, 'host' | 'port' | 'store' | 'mqttUrl' | 'serviceToken' | 'consoleToken'> &
  Partial<Pick<ConsoleConfig, 'consoleUsers' | 'publicReads' | 'tileUrl' | 'tileAttribution' | 'staleAfterMs' | 'maxConnections'>> & {
    /** The detector's rules, whose thresholds the charts draw. */
    rules?: RuleSet;
  };

const BODY_LIMITS: BodyLimits = { maxBytes: 4096, timeoutMs: 5000 };
/**
 * A request's headers must arrive within this, and the whole request within twice this (a
 * body is cut off sooner, by BODY_LIMITS): slow clients cannot hold connections for long.
 */
const HEADERS_TIMEOUT_MS = 5000;
/** How far back the map's tracks and the vehicle charts reach. */
const HISTORY_MS = 15 * 60_000;
/**
 * How often the console looks in the store for alert changes and latest values that moved.
 * Each look reads only what changed since the last (LatestChanges), so its cost follows the
 * fleet's reading rate, not its size; a reading waits for the next look, half of this on average.
 */
export const POLL_MS = 100;
/** One map point per this much time keeps 500 vehicles' tracks a few hundred KB. */
const TRACK_BUCKET_MS = 10_000;
const SESSION_TTL_MS = 12 * 3600_000;

type Action = 'acknowledge' | 'clear';

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: URLSearchParams;
  /** The route pattern's captures, URL-decoded. */
  params: string[];
  /** Who asks, for a write route (checked before the handler runs). */
  principal?: Principal;
}

interface Route {
  /** Metric label: a fixed name, never the raw path. */
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  /** Who may call it: anyone, whoever may read, or a signed-in user (checked before the handler runs). */
  access: 'open' | 'read' | 'write';
  path: RegExp;
  handle: (ctx: Context) => void | Promise<void>;
}

/**
 * The operator's console: a single page plus the JSON and event-stream API behind it.
 * Alerts, latest values and history come from the shared store, online/offline from the
 * vehicles' retained MQTT status. Reading needs a sign-in unless reads are public;
 * acknowledging and clearing always do.
 */
export class ConsoleServer {
  readonly registry: Registry;
  private readonly store: FleetStore;
  private readonly events: EventStream;
  private readonly status: StatusTracker;
  private readonly history: ReadingHistory;
  private readonly auth: ConsoleAuth;
  private readonly files: StaticFiles;
  private readonly throttle = new SignInThrottle();
  private readonly routes: Route[];
  private readonly metrics;
  private server?: Server;

  constructor(
    private readonly opts: ConsoleOptions,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.registry = registry ?? createRegistry('console');
    this.store = openStore(opts.store, log);
    this.history = new ReadingHistory(this.store);
    this.events = new EventStream(this.store, new LatestChanges(this.store), log, { pollMs: POLL_MS, heartbeatMs: 15_000 });
    this.auth = new ConsoleAuth(
      {
        token: opts.consoleToken,
        users: parseUsers(opts.consoleUsers ?? []),
        publicReads: opts.publicReads ?? false,
        sessionTtlMs: SESSION_TTL_MS,
      },
      this.store.sessions,
    );
    this.files = new StaticFiles({ 'content-security-policy': contentSecurityPolicy(opts.tileUrl ?? '') });
    const link = { mqttUrl: opts.mqttUrl, serviceToken: opts.serviceToken };
    this.status = new StatusTracker(link, log, (update) => this.events.status(update));
    this.metrics = this.createMetrics();
    this.routes = this.createRoutes();
  }

  async start(): Promise<void> {
    await this.store.open();
    // Connections that have had a request: a parse error there may follow an answer already sent.
    const answered = new WeakSet<Duplex>();
    // The answer under way on a connection: handlers wait on the store, and bytes after the
    // request (a body a DELETE may not carry) can reach the parser before the answer is sent.
    const answering = new WeakMap<Duplex, ServerResponse>();
    const server = createServer(
      // Checked every second rather than Node's 30: a slow client is answered close to its deadline.
      { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 2 * HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
      (req, res) => {
        answered.add(req.socket);
        answering.set(req.socket, res);
        res.once('close', () => answering.delete(req.socket));
        void this.dispatch(req, res);
      },
    );
    server.maxConnections = this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    server.on('drop', (peer?: { remoteAddress?: string }) => {
      this.metrics.connectionsRefused.inc({ reason: 'too_many_connections' });
      this.log.warn(
        { remote: peer?.remoteAddress, maxConnections: server.maxConnections },
        'connection refused: too many open connections',
      );
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      // Bytes the parser refused after a whole request still being answered: the answer goes
      // out first, then the connection ends. (A request cut off mid-body ends here and now.)
      const res = answering.get(socket);
      if (res?.req.complete) return void res.once('close', () => socket.destroy());
      this.answerMalformedRequest(err, socket, answered.has(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, resolve);
    });
    // Started only once listening, so a port already in use leaves nothing running.
    await this.events.start();
    this.status.start();
    this.log.info({ url: this.url }, 'console listening');
  }

  async stop(): Promise<void> {
    this.events.stop();
    await this.closeServer();
    await this.status.stop();
    await this.store.close();
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

  async health(): Promise<Health> {
    const mqtt = { connected: this.status.connected };
    try {
      return { ok: true, store: { lastChangeId: await this.store.lastChangeId() }, mqtt, eventClients: this.events.size };
    } catch (err) {
      return { ok: false, store: { error: (err as Error).message }, mqtt, eventClients: this.events.size };
    }
  }

  private createRoutes(): Route[] {
    const route =
      (method: Route['method'], access: Route['access']) =>
      (name: string, path: RegExp, handle: Route['handle']): Route => ({ name, method, access, path, handle });
    const [open, read, write] = [route('GET', 'open'), route('GET', 'read'), route('POST', 'write')];
    return [
      open('page', /^\/$/, ({ res }) => this.files.page(res)),
      open('app', /^\/app\/(.+)$/, ({ res, params }) => this.files.app(res, params[0]!)),
      open('vendor', /^\/vendor\/([^/]+)\/(.+)$/, ({ res, params }) => this.files.vendor(res, params[0]!, params[1]!)),
      open('config', /^\/api\/config$/, async ({ req, res }) => sendJson(res, 200, await this.pageConfig(req))),
      route('POST', 'open')('sign-in', /^\/api\/session$/, (ctx) => this.signIn(ctx)),
      route('DELETE', 'open')('sign-out', /^\/api\/session$/, (ctx) => this.signOut(ctx)),
      read('vehicles', /^\/api\/vehicles$/, async ({ res }) => sendJson(res, 200, await this.vehicles())),
      read('series', /^\/api\/vehicles\/([^/]+)\/series$/, async ({ res, params }) =>
        sendJson(res, 200, await this.history.series(parseVehicle(params[0]!), Date.now() - HISTORY_MS)),
      ),
      read('tracks', /^\/api\/tracks$/, async ({ res }) =>
        sendJson(res, 200, await this.history.tracks(Date.now() - HISTORY_MS, TRACK_BUCKET_MS)),
      ),
      read('alerts', /^\/api\/alerts$/, async ({ res, query }) => sendJson(res, 200, await this.store.listAlerts(parseAlertFilter(query)))),
      read('alert', /^\/api\/alerts\/([^/]+)$/, async ({ res, params }) => sendJson(res, 200, await this.alert(params[0]!))),
      write('ack', /^\/api\/alerts\/([^/]+)\/ack$/, (ctx) => this.lifecycle(ctx, 'acknowledge')),
      write('clear', /^\/api\/alerts\/([^/]+)\/clear$/, (ctx) => this.lifecycle(ctx, 'clear')),
      read('stats', /^\/api\/stats$/, async ({ res }) => sendJson(res, 200, await this.stats())),
      read('events', /^\/api\/events$/, ({ res }) => this.events.open(res)),
      open('ops', /^\/(?:healthz|metrics)$/, ({ res, path }) => this.ops(res, path)),
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
      signIns: new Counter({
        name: 'fleet_console_sign_ins_total',
        help: 'Sign-in attempts by result (ok, refused, throttled)',
        labelNames: ['result'] as const,
        registers,
      }),
      connectionsRefused: new Counter({
        name: 'fleet_console_connections_refused_total',
        help: 'Connections closed unanswered, by reason',
        labelNames: ['reason'] as const,
        registers,
      }),
      aborted: new Counter({
        name: 'fleet_console_requests_aborted_total',
        help: 'Requests whose client went away before sending all of it',
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
      const principal = await this.authorize(req, found);
      await found.handle({ req, res, path, query, params, principal });
    } catch (err) {
      if (err instanceof ClientAborted) {
        this.metrics.aborted.inc();
        this.log.info({ route, remote: req.socket.remoteAddress }, 'request aborted by the client');
        return;
      }
      this.fail(res, err);
    } finally {
      // An aborted request got no answer, so it has no status to count.
      if (res.headersSent) this.metrics.requests.inc({ route, status: res.statusCode });
    }
  }

  /** HEAD is answered wherever GET is, by the same handler: Node leaves out the body. */
  private match(method: string, path: string): { route: Route; params: string[] } {
    const onPath = this.routes.filter((r) => r.path.test(path));
    if (onPath.length === 0) throw new HttpError(404, `no such path ${truncate(path)}`);
    const route = onPath.find((r) => r.method === (method === 'HEAD' ? 'GET' : method));
    if (!route) {
      const allowed = onPath.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])).join(', ');
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

  /** Refused requests are logged with the route and address, never with what they sent. */
  private async authorize(req: IncomingMessage, route: Route): Promise<Principal | undefined> {
    try {
      if (route.access === 'read') await this.auth.requireRead(req, Date.now());
      return route.access === 'write' ? await this.auth.requireWrite(req, Date.now()) : undefined;
    } catch (err) {
      // Else the store could not say (the request fails with 500 and the error is logged there).
      if (err instanceof HttpError)
        this.log.warn({ route: route.name, remote: req.socket.remoteAddress, status: err.status }, 'request refused: not signed in');
      throw err;
    }
  }

  /** What the page needs before it draws anything; no secrets, so it is open. */
  private async pageConfig(req: IncomingMessage) {
    return {
      user: (await this.auth.principal(req, Date.now()))?.user ?? null,
      publicReads: this.auth.publicReads,
      tileUrl: this.opts.tileUrl ?? '',
      tileAttribution: this.opts.tileAttribution ?? '',
      staleAfterMs: this.staleAfterMs,
      historyMs: HISTORY_MS,
      rules: (this.opts.rules ?? DEFAULT_RULES).rules,
    };
  }

  private async signIn({ req, res }: Context): Promise<void> {
    // A sign-in forced from another site would tie the victim's page to the attacker's account.
    if (req.headers.origin !== undefined) requireSameOrigin(req);
    const { user, password } = parseSignIn(await readJsonBody(req, BODY_LIMITS));
    const remote = req.socket.remoteAddress ?? 'unknown';
    const throttled = this.throttle.attempt(remote, user, Date.now());
    if (throttled) {
      const seconds = Math.ceil(throttled.retryAfterMs / 1000);
      this.metrics.signIns.inc({ result: 'throttled' });
      this.log.warn({ user, remote, by: throttled.by, retryAfterS: seconds }, 'sign-in throttled');
      const whose = throttled.by === 'address' ? 'from this address' : 'for this user';
      throw new HttpError(429, `sign-in: too many failed attempts ${whose}; try again in ${seconds} s`, { 'retry-after': String(seconds) });
    }
    const signedIn = await this.auth.signIn(user, password, Date.now());
    if (!signedIn) {
      this.metrics.signIns.inc({ result: 'refused' });
      this.log.warn({ user, remote }, 'sign-in refused');
      throw new HttpError(401, 'user or password: not recognised');
    }
    this.throttle.succeeded(remote, user, Date.now());
    this.metrics.signIns.inc({ result: 'ok' });
    this.log.info({ user, remote }, 'signed in');
    sendJson(res, 200, { user, expiresAt: signedIn.session.expiresAt }, { 'set-cookie': sessionCookie(signedIn.id, SESSION_TTL_MS) });
  }

  private async signOut({ req, res }: Context): Promise<void> {
    requireSameOrigin(req);
    await this.auth.signOut(req);
    sendJson(res, 200, { user: null }, { 'set-cookie': CLEARED_COOKIE });
  }

  private get staleAfterMs(): number {
    return this.opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  private async vehicles() {
    const [latest, activeAlerts] = await Promise.all([this.store.latestRows(), this.store.activeAlertsByVehicle()]);
    const sources = { latest: latestByVehicle(latest), statuses: this.status.snapshot(), activeAlerts };
    return vehicleViews(sources, Date.now(), this.staleAfterMs);
  }

  private async alert(id: string): Promise<StoredAlert> {
    const alert = await this.store.getAlert(id);
    if (!alert) throw new HttpError(404, `no alert with id ${truncate(id)}`);
    return alert;
  }

  private async stats() {
    const [counts, alerts] = await Promise.all([this.store.counts(), this.store.alertCountsByState()]);
    return { ...counts, alerts };
  }

  private async lifecycle({ req, res, params, principal }: Context, action: Action): Promise<void> {
    const named = parseActor(await readJsonBody(req, BODY_LIMITS));
    // A signed-in user acts under their own name; a script with the token says who it acts for.
    const by = principal!.via === 'session' ? principal!.user : named;
    const id = params[0]!;
    const at = Date.now();
    const alert = await (action === 'acknowledge' ? this.store.acknowledge(id, by, at) : this.store.clear(id, by, at));
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

  /**
   * A request Node's HTTP parser refuses (a control byte in the path, a broken header) or that
   * does not arrive in time never reaches a route; it still gets a JSON answer that says what
   * was wrong, like every other refusal.
   */
  private answerMalformedRequest(err: NodeJS.ErrnoException, socket: Duplex, answeredBefore: boolean): void {
    // Bytes left over after a request we answered (a body we did not read) end the connection quietly.
    if (!socket.writable || answeredBefore) {
      socket.destroy();
      return;
    }
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const [status, reason] = timedOut ? [408, 'Request Timeout'] : [400, 'Bad Request'];
    const error = timedOut
      ? `request: headers not received within ${HEADERS_TIMEOUT_MS / 1000} s`
      : `request: not valid HTTP (${err.code ?? err.message})`;
    this.metrics.requests.inc({ route: 'none', status });
    this.log.info({ remote: (socket as Socket).remoteAddress, status, error }, 'request refused before routing');
    const body = JSON.stringify({ error });
    // An answer to HEAD has no body, even when the rest of the request line was unreadable.
    const head = (err as { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
    );
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

/**
 * Everything the page loads is same-origin, except map tiles from the configured server.
 * Leaflet and uPlot style elements from script (CSSOM), which style-src does not restrict.
 */
function contentSecurityPolicy(tileUrl: string): string {
  // `{s}` subdomains become a wildcard host.
  const tiles = /^https?:\/\/[^/]+/.exec(tileUrl)?.[0].replace(/\{s\}/g, '*') ?? '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: ${tiles}`.trim(),
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
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
