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
/** `node kafka-ready.js BOOTSTRAP` (test/support/kafka-ready.ts, built into dist/): exits 0 once a client can talk to the broker. */
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

/** A broker on a host of a test network (test/support/hosts.ts) instead of this machine's loopback. */
export interface KafkaHost {
  /** The host's address: the broker listens on it and gives it to clients. */
  address: string;
  /** Starts a process inside the host (Network.spawner). */
  spawn: (command: string, args: string[], options: SpawnOptions) => ChildProcess;
  /** Whether a client can talk to the broker at `bootstrap`, asked from inside the network. */
  ready: (bootstrap: string) => Promise<boolean>;
}

/** The ports of a broker on a host of its own, where nothing else listens. */
const HOST_PORTS = { client: 9092, controller: 9093 };

/**
 * A real single-node KRaft broker (Kafka from Maven Central, run by the machine's Java) in
 * a fresh temp dir, on free ports of 127.0.0.1 or on a test host's address (9092). Its
 * output goes to broker.log in that dir.
 */
export async function startKafka(opts: { partitionsDefault?: number; host?: KafkaHost } = {}): Promise<KafkaBroker> {
  if (!hasJars()) await run('bash', [join(ROOT, 'scripts', 'services', 'kafka.sh'), 'fetch'], { timeout: 600_000 });
  const dir = tempDir('fleet-kafka-');
  const { host } = opts;
  const address = host?.address ?? '127.0.0.1';
  const [port, controllerPort] = host ? [HOST_PORTS.client, HOST_PORTS.controller] : [await freePort(), await freePort()];
  const props = join(dir, 'server.properties');
  writeFileSync(props, serverProperties(dir, address, port, controllerPort, opts.partitionsDefault ?? 1));
  writeFileSync(join(dir, 'log4j2.properties'), LOG4J);
  // A cluster id is 16 random bytes in base64url; joined with `=`, since one starting with `-` reads as a flag.
  const clusterId = randomBytes(16).toString('base64url');
  await run('java', ['-cp', `${LIBS}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', props], {
    timeout: 60_000,
  });

  const bootstrap = `${address}:${port}`;
  const ready = host ? host.ready : inProcessProbe;
  let child: ChildProcess | undefined;
  let gone = Promise.resolve();
  // A test that dies mid-way must not leave a JVM behind.
  process.on('exit', () => child?.kill('SIGKILL'));

  const launch = async () => {
    const log = openSync(join(dir, 'broker.log'), 'a');
    const c = (host?.spawn ?? spawn)(
      'java',
      ['-Xmx512m', '-Xms128m', `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`, '-cp', `${LIBS}/*`, 'kafka.Kafka', props],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    child = c;
    gone = new Promise((resolve) => c.once('exit', () => resolve()));
    await waitReady(bootstrap, c, dir, ready);
  };

  await launch();
  return {
    bootstrap,
    port,
    async stop() {
      const c = child;
      if (!c) return;
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
      await gone;
      clearTimeout(timer);
      child = undefined;
    },
    kill() {
      child?.kill('SIGKILL');
      child = undefined;
    },
    async restart() {
      if (child) throw new Error('the broker is still running: stop() or kill() it first');
      await gone;
      await launch();
    },
    async dumpLog(topic, partition) {
      const logDir = join(dir, 'data', `${topic}-${partition}`);
      const segments = readdirSync(logDir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => join(logDir, f));
      const { stdout } = await run('java', ['-cp', `${LIBS}/*`, 'kafka.tools.DumpLogSegments', '--files', segments.join(',')], {
        timeout: 60_000,
      });
      return stdout;
    },
  };
}

function hasJars(): boolean {
  return existsSync(LIBS) && readdirSync(LIBS).some((f) => f.endsWith('.jar'));
}

function serverProperties(dir: string, address: string, port: number, controllerPort: number, partitions: number): string {
  return `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${address}:${controllerPort}`,
    `listeners=PLAINTEXT://${address}:${port},CONTROLLER://${address}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${address}:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    `num.partitions=${partitions}`,
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
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

/** Ready means a client can talk to it, not only that the port is open. */
async function waitReady(
  bootstrap: string,
  child: ChildProcess,
  dir: string,
  ready: (bootstrap: string) => Promise<boolean>,
): Promise<void> {
  await waitFor(
    `the Kafka broker on ${bootstrap}`,
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the Kafka broker exited (${child.exitCode ?? child.signalCode}); see ${join(dir, 'broker.log')}:\n${tail(dir)}`);
      }
      return ready(bootstrap);
    },
    READY_TIMEOUT_MS,
    250,
  );
}

/** Asks the broker for its cluster from this process. */
export async function inProcessProbe(bootstrap: string): Promise<boolean> {
  const admin = new Kafka({
    brokers: [bootstrap],
    clientId: 'kafka-broker-probe',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    return (await admin.describeCluster()).brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect();
  }
}

function tail(dir: string): string {
  return readFileSync(join(dir, 'broker.log'), 'utf8').split('\n').slice(-20).join('\n');
}
