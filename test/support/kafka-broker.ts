import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { freePort, tempDir, waitFor } from './harness.js';
import { ROOT } from './paths.js';

const run = promisify(execFile);
const LIBS = join(ROOT, '.cache', 'kafka', 'libs');
/** `node kafka-ready.js BOOTSTRAP [BROKERS]` (test/support/kafka-ready.ts, built into dist/): exits 0 once a client sees the cluster. */
export const KAFKA_READY = join(ROOT, 'dist', 'test', 'support', 'kafka-ready.js');
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

export interface KafkaBroker {
  bootstrap: string;
  port: number;
  /** SIGTERM (a clean, controlled shutdown), SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): void;
  /** The same broker again: same log dirs, same ports. */
  restart(): Promise<void>;
  /** Kafka's own DumpLogSegments on a partition's log: a line per record batch, with its count and compression codec. */
  dumpLog(topic: string, partition: number): Promise<string>;
}

/** One node of a cluster: a combined KRaft controller and broker. */
export interface KafkaNode extends KafkaBroker {
  nodeId: number;
  /** Whether its process is up (not stopped or killed). */
  readonly running: boolean;
}

/** A node on a host of a test network (test/support/hosts.ts) instead of this machine's loopback. */
export interface KafkaHost {
  /** The host's address: the node listens on it and gives it to clients. */
  address: string;
  /** Starts a process inside the host (Network.spawner). */
  spawn: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
  /** Whether a client at `bootstrap` sees at least `brokers` brokers, asked from inside the network. */
  ready: (bootstrap: string, brokers: number) => Promise<boolean>;
}

/** The ports of a node on a host of its own, where nothing else listens. */
const HOST_PORTS = { broker: 9092, controller: 9093 };

export interface KafkaCluster {
  /** Every node's host:port: a client's bootstrap list. */
  brokers: string[];
  nodes: KafkaNode[];
  node(nodeId: number): KafkaNode;
  /** Each partition of a topic with its leader and in-sync replicas (node ids), as a running node reports them. */
  partitions(topic: string): Promise<{ partition: number; leader: number; isr: number[] }[]>;
  /** Stops every node still running. */
  stop(): Promise<void>;
}

/**
 * A real single-node KRaft broker (Kafka from Maven Central, run by the machine's Java) in
 * a fresh temp dir, on free ports of 127.0.0.1 or on a test host's address (9092). Its
 * output goes to broker.log in that dir.
 */
export async function startKafka(opts: { partitionsDefault?: number; host?: KafkaHost } = {}): Promise<KafkaBroker> {
  const cluster = await startKafkaCluster(1, { partitionsDefault: opts.partitionsDefault, hosts: opts.host && [opts.host] });
  return cluster.nodes[0]!;
}

/**
 * `size` real KRaft nodes, each a controller and a broker (so the controller quorum has
 * `size` voters), on free ports of 127.0.0.1 or each on a test host of its own (`hosts`, one
 * per node, on 9092 and 9093), each in a temp dir of its own with its log in broker.log. With three or more, the internal topics are replicated three times with two
 * in sync at least, as a production cluster has them. Each JVM keeps to a small heap and
 * few threads: three of them share two cores with the tests.
 */
export async function startKafkaCluster(
  size: number,
  opts: { partitionsDefault?: number; hosts?: KafkaHost[] } = {},
): Promise<KafkaCluster> {
  if (!hasJars()) await run('bash', [join(ROOT, 'scripts', 'services', 'kafka.sh'), 'fetch'], { timeout: 600_000 });
  if (opts.hosts && opts.hosts.length !== size) throw new Error(`${size} Kafka nodes need as many hosts, not ${opts.hosts.length}`);
  const ports = await Promise.all(
    Array.from({ length: size }, async (_, i) => {
      const host = opts.hosts?.[i];
      if (host) return { host, address: host.address, ...HOST_PORTS };
      return { host, address: '127.0.0.1', broker: await freePort(), controller: await freePort() };
    }),
  );
  const voters = ports.map((p, i) => `${i + 1}@${p.address}:${p.controller}`).join(',');
  // A cluster id is 16 random bytes in base64url; joined with `=`, since one starting with `-` reads as a flag.
  const clusterId = randomBytes(16).toString('base64url');
  const nodes = await Promise.all(
    ports.map(async (p, i) => {
      const dir = tempDir(`fleet-kafka-${i + 1}-`);
      const props = join(dir, 'server.properties');
      writeFileSync(props, serverProperties({ dir, nodeId: i + 1, ...p, voters, size, partitions: opts.partitionsDefault ?? 1 }));
      writeFileSync(join(dir, 'log4j2.properties'), LOG4J);
      await run('java', ['-cp', `${LIBS}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', props], {
        timeout: 60_000,
      });
      return new Node(i + 1, dir, props, p.address, p.broker, size, p.host);
    }),
  );
  // Launched together: a node is ready only once a majority of the quorum is up.
  try {
    await Promise.all(nodes.map((n) => n.launch()));
  } catch (err) {
    for (const n of nodes) n.kill();
    throw err;
  }
  return {
    brokers: nodes.map((n) => n.bootstrap),
    nodes,
    node(nodeId) {
      const n = nodes.find((x) => x.nodeId === nodeId);
      if (!n) throw new Error(`no Kafka node ${nodeId}`);
      return n;
    },
    async partitions(topic) {
      const up = nodes.filter((n) => n.running).map((n) => n.bootstrap);
      const admin = new Kafka({ brokers: up, clientId: 'kafka-cluster-probe', logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
        return (meta?.partitions ?? [])
          .map((p) => ({ partition: p.partitionId, leader: p.leader, isr: [...p.isr].sort() }))
          .sort((a, b) => a.partition - b.partition);
      } finally {
        await admin.disconnect();
      }
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

class Node implements KafkaNode {
  readonly bootstrap: string;
  private child?: ChildProcess;
  private gone = Promise.resolve();

  constructor(
    readonly nodeId: number,
    private readonly dir: string,
    private readonly props: string,
    address: string,
    readonly port: number,
    private readonly clusterSize: number,
    private readonly host: KafkaHost | undefined,
  ) {
    this.bootstrap = `${address}:${port}`;
    // A test that dies mid-way must not leave a JVM behind.
    process.on('exit', () => this.child?.kill('SIGKILL'));
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async launch(): Promise<void> {
    const log = openSync(join(this.dir, 'broker.log'), 'a');
    // One node alone keeps the heap it always had; nodes of a cluster less, and the serial collector's one thread.
    const heap = this.clusterSize === 1 ? ['-Xmx512m', '-Xms128m'] : ['-Xmx384m', '-Xms64m', '-XX:+UseSerialGC'];
    const c = (this.host?.spawn ?? spawn)(
      'java',
      [...heap, `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`, '-cp', `${LIBS}/*`, 'kafka.Kafka', this.props],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.child = c;
    this.gone = new Promise((resolve) => c.once('exit', () => resolve()));
    const ready = this.host ? this.host.ready : inProcessProbe;
    await waitReady(this.bootstrap, c, this.dir, () => ready(this.bootstrap, this.clusterSize));
  }

  async stop(): Promise<void> {
    const c = this.child;
    if (!c) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
    await this.gone;
    clearTimeout(timer);
    this.child = undefined;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error('the broker is still running: stop() or kill() it first');
    await this.gone;
    await this.launch();
  }

  async dumpLog(topic: string, partition: number): Promise<string> {
    const logDir = join(this.dir, 'data', `${topic}-${partition}`);
    const segments = readdirSync(logDir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => join(logDir, f));
    const { stdout } = await run('java', ['-cp', `${LIBS}/*`, 'kafka.tools.DumpLogSegments', '--files', segments.join(',')], {
      timeout: 60_000,
    });
    return stdout;
  }
}

function hasJars(): boolean {
  return existsSync(LIBS) && readdirSync(LIBS).some((f) => f.endsWith('.jar'));
}

function serverProperties(o: {
  dir: string;
  address: string;
  nodeId: number;
  broker: number;
  controller: number;
  voters: string;
  size: number;
  partitions: number;
}): string {
  // Internal topics as a production cluster keeps them, where there are brokers enough.
  const replication = Math.min(3, o.size);
  const minIsr = Math.min(2, replication);
  return `${[
    'process.roles=broker,controller',
    `node.id=${o.nodeId}`,
    `controller.quorum.voters=${o.voters}`,
    `listeners=PLAINTEXT://${o.address}:${o.broker},CONTROLLER://${o.address}:${o.controller}`,
    `advertised.listeners=PLAINTEXT://${o.address}:${o.broker}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(o.dir, 'data')}`,
    `num.partitions=${o.partitions}`,
    `offsets.topic.replication.factor=${replication}`,
    'offsets.topic.num.partitions=1',
    `transaction.state.log.replication.factor=${replication}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    // Fewer threads than a server's defaults: the nodes share two cores.
    ...(o.size > 1 ? ['num.network.threads=2', 'num.io.threads=2', 'background.threads=2', 'num.recovery.threads.per.data.dir=1'] : []),
  ].join('\n')}\n`;
}

const LOG4J = `${[
  'appender.out.type = Console',
  'appender.out.name = out',
  'appender.out.layout.type = PatternLayout',
  'appender.out.layout.pattern = [%d] %p %m (%c)%n',
  'rootLogger.level = info',
  'rootLogger.appenderRef.out.ref = out',
].join('\n')}\n`;

/** Ready means a client can talk to it and it sees the whole cluster, not only that the port is open. */
async function waitReady(bootstrap: string, child: ChildProcess, dir: string, ready: () => Promise<boolean>): Promise<void> {
  await waitFor(
    `the Kafka broker on ${bootstrap}`,
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the Kafka broker exited (${child.exitCode ?? child.signalCode}); see ${join(dir, 'broker.log')}:\n${tail(dir)}`);
      }
      return ready();
    },
    READY_TIMEOUT_MS,
    250,
  );
}

/** Asks the broker at `bootstrap`, from this process, whether it sees at least `brokers` brokers. */
export async function inProcessProbe(bootstrap: string, brokers = 1): Promise<boolean> {
  const admin = new Kafka({
    brokers: [bootstrap],
    clientId: 'kafka-broker-probe',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length >= brokers;
  } catch {
    return false;
  } finally {
    await admin.disconnect();
  }
}

function tail(dir: string): string {
  return readFileSync(join(dir, 'broker.log'), 'utf8').split('\n').slice(-20).join('\n');
}
