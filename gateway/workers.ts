import cluster, { type Worker } from 'node:cluster';
import type { Server as HttpServer } from 'node:http';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { backoffDelay } from '../shared/backoff.js';
import type { Logger } from '../shared/log.js';
import { startOpsServer, type Health } from '../shared/ops-server.js';
import type { Gateway } from './gateway.js';

/** What the primary asks a worker over IPC, and what the worker answers. */
const HEALTH_REQUEST = 'fleet:gateway-health?';
const HEALTH_REPLY = 'fleet:gateway-health';
/**
 * The primary's stop, sent over IPC rather than as a signal: a service manager may signal the
 * whole process group too, and a second SIGTERM would end a worker in the middle of its drain.
 */
const STOP = 'fleet:gateway-stop';
/** A worker that does not answer in this time counts as unhealthy. */
const HEALTH_TIMEOUT_MS = 2_000;
/** A worker that lived this long died of something other than its start: the next one starts at once. */
const STABLE_AFTER_MS = 30_000;
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 10_000;

interface HealthReply {
  type: typeof HEALTH_REPLY;
  id: number;
  health: Health;
}

export interface WorkerSettings {
  workers: number;
  opsHost: string;
  opsPort: number;
}

/**
 * `fleet gateway --workers N`: the primary process forks N gateways (node:cluster), each
 * binding the MQTT and service ports itself with SO_REUSEPORT so the kernel spreads
 * connections over them and no process relays another's bytes. The workers share the
 * embedded stream's SQLite file (WAL, a busy timeout: their commits take turns) or write to
 * Kafka/Kinesis, and are linked by the cluster's Redis like gateways on other hosts. The
 * primary takes no MQTT traffic: it restarts a worker that dies, answers /healthz and
 * /metrics for all of them on the ops port, and on SIGTERM stops them all, each draining its
 * writes before it exits.
 */
export class GatewayWorkers {
  private readonly live = new Map<number, { worker: Worker; startedAt: number; exited: Promise<string | undefined> }>();
  private stopping = false;
  /** Consecutive deaths of workers that had not lived STABLE_AFTER_MS: the restart backs off by them. */
  private quickDeaths = 0;
  private ops?: HttpServer;
  private nextRequest = 0;
  private readonly registry = new Registry();
  private readonly aggregator = new AggregatorRegistry();
  private readonly restarts: Counter;
  private restarted = 0;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
  ) {
    this.registry.setDefaultLabels({ component: 'gateway' });
    this.restarts = new Counter({
      name: 'fleet_gateway_worker_restarts_total',
      help: 'Gateway worker processes that died and were started again',
      registers: [this.registry],
    });
    const live = this.live;
    new Gauge({
      name: 'fleet_gateway_workers',
      help: 'Gateway worker processes running',
      registers: [this.registry],
      collect(this: Gauge) {
        this.set(live.size);
      },
    });
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.settings.workers; i++) this.fork();
    if (this.settings.opsPort >= 0) {
      const metrics = {
        contentType: this.registry.contentType,
        // Each worker's registry summed by prom-client (counters add up, gauges too), then the primary's own.
        metrics: async () => `${await this.aggregator.clusterMetrics()}\n${await this.registry.metrics()}`,
      };
      this.ops = await startOpsServer(this.settings.opsHost, this.settings.opsPort, metrics, () => this.health(), this.log);
    }
    this.log.info({ workers: this.settings.workers, opsPort: this.settings.opsPort }, 'gateway workers started');
  }

  /** Healthy when every worker runs and says it is healthy; each worker's own health beside. */
  async health(): Promise<Health> {
    const workers = await Promise.all([...this.live.values()].map(({ worker, startedAt }) => this.askHealth(worker, startedAt)));
    return {
      ok: workers.length === this.settings.workers && workers.every((w) => w.ok),
      workers: { wanted: this.settings.workers, running: workers.length, restarts: this.restarted },
      perWorker: workers,
    };
  }

  /** Stops every worker (each drains its writes and closes its sinks, as on SIGTERM) and waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ops?.close();
    const running = [...this.live.values()];
    for (const { worker } of running) worker.send({ type: STOP });
    const unclean = (await Promise.all(running.map((w) => w.exited))).filter((e) => e !== undefined);
    this.log.info('gateway workers stopped');
    if (unclean.length > 0) throw new Error(`gateway workers did not stop cleanly: ${unclean.join('; ')}`);
  }

  private fork(): void {
    const worker = cluster.fork();
    const startedAt = Date.now();
    const pid = worker.process.pid!;
    const exited = new Promise<string | undefined>((resolve) => {
      worker.once('exit', (code, signal) => {
        this.live.delete(pid);
        resolve(code === 0 && signal === null ? undefined : `worker ${pid} exited with ${signal ?? code}`);
        if (!this.stopping) this.replace(pid, startedAt, code, signal);
      });
    });
    this.live.set(pid, { worker, startedAt, exited });
  }

  private replace(pid: number, startedAt: number, code: number | null, signal: string | null): void {
    this.quickDeaths = Date.now() - startedAt < STABLE_AFTER_MS ? this.quickDeaths + 1 : 0;
    const delay = this.quickDeaths === 0 ? 0 : backoffDelay(this.quickDeaths - 1, RESTART_BASE_MS, RESTART_MAX_MS);
    this.restarts.inc();
    this.restarted++;
    this.log.error({ pid, code, signal, restartInMs: Math.round(delay) }, 'gateway worker died; starting another');
    setTimeout(() => {
      if (!this.stopping) this.fork();
    }, delay);
  }

  private askHealth(worker: Worker, startedAt: number): Promise<Health & { pid: number; upSeconds: number }> {
    const id = ++this.nextRequest;
    const pid = worker.process.pid!;
    const upSeconds = Math.round((Date.now() - startedAt) / 1000);
    return new Promise((resolve) => {
      const answered = (msg: unknown) => {
        const reply = msg as Partial<HealthReply>;
        if (reply.type !== HEALTH_REPLY || reply.id !== id) return;
        finish({ pid, upSeconds, ...reply.health! });
      };
      const timer = setTimeout(
        () => finish({ pid, upSeconds, ok: false, detail: `no answer within ${HEALTH_TIMEOUT_MS} ms` }),
        HEALTH_TIMEOUT_MS,
      );
      const finish = (h: Health & { pid: number; upSeconds: number }) => {
        clearTimeout(timer);
        worker.off('message', answered);
        resolve(h);
      };
      worker.on('message', answered);
      worker.send({ type: HEALTH_REQUEST, id }, (err: Error | null) => {
        if (err) finish({ pid, upSeconds, ok: false, detail: `not reachable: ${err.message}` });
      });
    });
  }
}

/**
 * In a worker: lets the primary read this gateway's metrics (prom-client's cluster protocol)
 * and health, and stop it (`stop`: what SIGTERM does).
 */
export function answerPrimary(gateway: Gateway, stop: () => void): void {
  AggregatorRegistry.setRegistries([gateway.registry]);
  // prom-client answers the primary's requests only once an AggregatorRegistry exists in the process.
  new AggregatorRegistry();
  process.on('message', (msg: { type?: string; id?: number }) => {
    if (msg?.type === STOP) return stop();
    if (msg?.type !== HEALTH_REQUEST) return;
    const reply: HealthReply = { type: HEALTH_REPLY, id: msg.id!, health: gateway.health() };
    process.send?.(reply);
  });
}
