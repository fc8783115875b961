import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { sleep, tempDir, waitFor, within } from './harness.js';
import { FLEET_BIN, ROOT } from './paths.js';

/**
 * Hosts as network namespaces: a private network on this machine for tests that need
 * several machines. A bridge lives in a namespace of its own (so this machine's own
 * namespace gets no address and no route into the network), and each host is a namespace
 * with loopback and one link into the bridge, `eth0`, with an address from SUBNET that only
 * these namespaces use. Processes run inside a host through `ip netns exec`, with the
 * project's Node; the faults are those of real machines: every process of a host killed at
 * once, a host's link going down (its sockets are not closed, they stop hearing anything),
 * and the link coming back.
 *
 * Every namespace is named `fleetnet-<pid>-<n>-…` after the process that made it, so a
 * network whose test process died without tearing it down (SIGKILLed, the machine reset)
 * is recognised and removed by the next one made, while a network of another test process
 * still running is left alone. Needs root (`ip netns`); CI runs as root.
 */

/** The /24 the hosts take their addresses from; it exists only inside the namespaces. */
export const SUBNET = '10.213.0';
/** The first host's last octet; hosts are numbered from it in the order they are named. */
const FIRST_HOST = 11;
const FAMILY = 'fleetnet';
/** The project's Node, which the native modules were built for (the system's may be another). */
export const NODE = join(ROOT, 'node_modules', '.bin', 'node');
/** A small program a host runs to fetch a URL as JSON (test/support/fetch-json.ts, built into dist/). */
const FETCH_JSON = join(ROOT, 'dist', 'test', 'support', 'fetch-json.js');

const IP_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 10_000;

export interface HostProcess {
  readonly host: string;
  readonly name: string;
  readonly child: ChildProcess;
  /** stdout lines, as they come; also written, with stderr, to `logFile`. */
  readonly lines: string[];
  readonly stderr: string[];
  readonly logFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Host {
  ns: string;
  address: string;
  /** The bridge's end of the host's link, in the bridge's namespace. */
  port: string;
}

interface Started {
  argv: string[];
  env: NodeJS.ProcessEnv;
  proc: HostProcess;
}

export class Network {
  private readonly hosts = new Map<string, Host>();
  /** The last process started under each `host/name`, with how it was started. */
  private readonly started = new Map<string, Started>();
  private readonly logs = new Set<WriteStream>();
  private destroyed = false;
  private readonly onExit = () => this.destroySync();

  private constructor(
    /** Every namespace of this network starts with it. */
    readonly prefix: string,
    /** Where the processes' logs go. */
    readonly dir: string,
  ) {}

  /**
   * Builds the network: the bridge, then each named host with its address (in the order
   * given, from SUBNET.11). Leftovers of dead test processes are removed first. On failure
   * whatever was made is removed again.
   */
  static async create(hostNames: string[], opts: { dir?: string } = {}): Promise<Network> {
    requireRoot();
    for (const name of hostNames) {
      if (!/^[a-z][a-z0-9-]{0,19}$/.test(name)) throw new Error(`host name ${JSON.stringify(name)}: 1-20 of a-z 0-9 -, from a letter`);
    }
    if (new Set(hostNames).size !== hostNames.length) throw new Error(`host names must differ: ${hostNames.join(', ')}`);
    if (hostNames.length > 200) throw new Error('at most 200 hosts on one /24');
    await removeLeftovers();
    await requireSubnetUnused();
    const net = new Network(`${FAMILY}-${process.pid}-${nextNetwork++}`, opts.dir ?? tempDir('fleet-hosts-'));
    mkdirSync(net.dir, { recursive: true });
    process.on('exit', net.onExit);
    try {
      await net.build(hostNames);
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** The namespaces this harness made that exist now, of any test process (for checks that nothing is left). */
  static async namespaces(): Promise<string[]> {
    return (await listNamespaces()).filter((n) => n.startsWith(`${FAMILY}-`));
  }

  get hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  address(host: string): string {
    return this.host(host).address;
  }

  /** The namespace behind a host, for `ip -n` and `ip netns exec` by hand. */
  namespace(host: string): string {
    return this.host(host).ns;
  }

  /** The namespace of the bridge every host's link plugs into. */
  get bridgeNamespace(): string {
    return `${this.prefix}-net`;
  }

  /**
   * Starts `argv` inside the host, with this process's environment plus `env`, collecting
   * its output. `name` identifies it for restart(); a name already used is taken over.
   */
  start(host: string, name: string, argv: string[], env: NodeJS.ProcessEnv = {}): HostProcess {
    const { ns } = this.host(host);
    const logFile = join(this.dir, `${host}.${name}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    this.logs.add(log);
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const stderr: string[] = [];
    collect(child.stdout, lines, log);
    collect(child.stderr, stderr, log);
    // 'close', not 'exit': the output is complete by then.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => {
        log.end(`# ${name} exited: ${signal ?? code}\n`);
        this.logs.delete(log);
        resolve({ code, signal });
      }),
    );
    const proc = { host, name, child, lines, stderr, logFile, exited };
    this.started.set(`${host}/${name}`, { argv, env, proc });
    return proc;
  }

  /** Node.js running `script` inside the host. */
  node(host: string, name: string, script: string, args: string[], env: NodeJS.ProcessEnv = {}): HostProcess {
    return this.start(host, name, [NODE, script, ...args], env);
  }

  /** `fleet ARGS` (the built CLI, as users run it) inside the host. */
  fleet(host: string, name: string, args: string[], env: NodeJS.ProcessEnv = {}): HostProcess {
    return this.node(host, name, FLEET_BIN, args, env);
  }

  /** The process started last under this name on the host. */
  process(host: string, name: string): HostProcess {
    const s = this.started.get(`${host}/${name}`);
    if (!s) throw new Error(`nothing named ${name} was started on ${host}`);
    return s.proc;
  }

  /**
   * A spawn() that runs the command inside the host, for code that manages its own child
   * (the Kafka broker's JVM): the child is the command itself, so signalling it signals that.
   */
  spawner(host: string): (command: string, args: string[], options: SpawnOptions) => ChildProcess {
    const { ns } = this.host(host);
    return (command, args, options) => spawn('ip', ['netns', 'exec', ns, command, ...args], { cwd: ROOT, ...options });
  }

  /** Runs a command inside the host to its end (killed after `timeoutMs`), with `input` on its stdin. */
  exec(host: string, argv: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
    const { ns } = this.host(host);
    return new Promise((resolve) => {
      const child = execFile(
        'ip',
        ['netns', 'exec', ns, ...argv],
        { cwd: ROOT, env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({ code, stdout, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
        },
      );
      child.stdin?.end(opts.input ?? '');
    });
  }

  /**
   * GET `url` from inside `fromHost` (this machine's own namespace has no route into the
   * network) and parse the answer as JSON. Throws when there is no answer.
   */
  async fetchJson<T>(fromHost: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
    const r = await this.exec(fromHost, [NODE, FETCH_JSON, url, JSON.stringify(headers)], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`GET ${url} from ${fromHost}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return JSON.parse(r.stdout) as { status: number; body: T };
  }

  /** Signals the process (SIGKILL, a crash, unless told otherwise) and starts it again the same way; SIGKILL when it does not exit within 10 s. */
  async restart(host: string, name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<HostProcess> {
    const s = this.started.get(`${host}/${name}`);
    if (!s) throw new Error(`nothing named ${name} was started on ${host}`);
    await stopProcess(s.proc, signal);
    return this.start(host, name, s.argv, s.env);
  }

  /** Starts again, the same way, a process that is no longer running (after killHost()). */
  startAgain(host: string, name: string): HostProcess {
    const s = this.started.get(`${host}/${name}`);
    if (!s) throw new Error(`nothing named ${name} was started on ${host}`);
    if (isRunning(s.proc.child)) throw new Error(`${name} on ${host} is still running`);
    return this.start(host, name, s.argv, s.env);
  }

  /**
   * The host crashes: SIGKILL to every process in its namespace (whoever started it, and
   * whatever it started), until none is left. Its link stays up, as a machine whose
   * processes died still answers with resets.
   */
  async killHost(host: string): Promise<void> {
    const { ns } = this.host(host);
    await killNamespace(ns);
    await Promise.all(
      [...this.started.values()]
        .filter((s) => s.proc.host === host)
        .map((s) => within(`${s.proc.name} on ${host} to exit after SIGKILL`, s.proc.exited, KILL_WAIT_MS)),
    );
  }

  /** The host's link goes down inside it: nothing in or out, no socket closed, no process told. */
  async partition(host: string): Promise<void> {
    await ip(['-n', this.host(host).ns, 'link', 'set', 'eth0', 'down']);
  }

  /** The host's link comes back up. */
  async heal(host: string): Promise<void> {
    const { ns, port } = this.host(host);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    // The bridge forwards again once its end has carrier (no STP: no listening delay).
    await waitFor(
      `${host}'s link up in the bridge`,
      async () => (await ip(['-n', this.bridgeNamespace, '-o', 'link', 'show', port])).includes('state UP'),
      IP_TIMEOUT_MS,
      50,
    );
  }

  /** Kills every process of every host and removes every namespace (and with them the links); safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const host of this.hosts.values()) await killNamespace(host.ns).catch(() => undefined);
    for (const s of this.started.values()) await within('a process to exit', s.proc.exited, KILL_WAIT_MS).catch(() => undefined);
    for (const ns of await this.ownNamespaces()) await ip(['netns', 'delete', ns]);
    const left = await this.ownNamespaces();
    if (left.length > 0) throw new Error(`namespaces left after teardown: ${left.join(', ')}`);
    for (const log of this.logs) log.end();
  }

  private async build(hostNames: string[]): Promise<void> {
    const bridge = this.bridgeNamespace;
    await ip(['netns', 'add', bridge]);
    await ip(['-n', bridge, 'link', 'set', 'lo', 'up']);
    await ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', bridge, 'link', 'set', 'br0', 'up']);
    for (const [i, name] of hostNames.entries()) {
      const host: Host = { ns: `${this.prefix}-${name}`, address: `${SUBNET}.${FIRST_HOST + i}`, port: `h${i}` };
      this.hosts.set(name, host);
      await ip(['netns', 'add', host.ns]);
      // Both ends made in the bridge's namespace, the host's end moved straight into the host: none is ever in ours.
      await ip(['-n', bridge, 'link', 'add', host.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns]);
      await ip(['-n', bridge, 'link', 'set', host.port, 'master', 'br0', 'up']);
      await ip(['-n', host.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
      await ip(['-n', host.ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  private host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in this network (${this.hostNames.join(', ')})`);
    return h;
  }

  private async ownNamespaces(): Promise<string[]> {
    return (await listNamespaces()).filter((n) => n.startsWith(`${this.prefix}-`));
  }

  /** The last resort when the test process exits without destroy(): nothing async runs then. */
  private destroySync(): void {
    const own = listNamespacesSync().filter((n) => n.startsWith(`${this.prefix}-`));
    for (const ns of own) {
      for (const pid of pidsInSync(ns)) tryKill(pid);
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
      } catch {
        // The next network made removes it as a leftover.
      }
    }
  }
}

let nextNetwork = 1;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('hosts as network namespaces need root (ip netns add, veth links); run this test as root, as CI does');
  }
}

async function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('ip', args, { timeout: IP_TIMEOUT_MS }, (err, stdout, stderr) =>
      err ? reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout),
    ),
  );
}

async function listNamespaces(): Promise<string[]> {
  return parseNamespaces(await ip(['netns', 'list']));
}

function listNamespacesSync(): string[] {
  try {
    return parseNamespaces(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: IP_TIMEOUT_MS }));
  } catch {
    return [];
  }
}

/** `ip netns list` prints `name` or `name (id: N)` per line. */
function parseNamespaces(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim().split(' ')[0] ?? '')
    .filter(Boolean);
}

async function pidsIn(ns: string): Promise<number[]> {
  return (await ip(['netns', 'pids', ns])).split('\n').filter(Boolean).map(Number);
}

function pidsInSync(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: IP_TIMEOUT_MS }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

/** SIGKILL to every process in the namespace, again until none is left (one may have forked meanwhile). */
async function killNamespace(ns: string): Promise<void> {
  await waitFor(
    `every process in ${ns} gone`,
    async () => {
      const pids = await pidsIn(ns);
      for (const pid of pids) tryKill(pid);
      return pids.length === 0;
    },
    KILL_WAIT_MS,
    50,
  );
}

/** Removes the namespaces of test processes that are no longer running, with anything still inside them. */
async function removeLeftovers(): Promise<void> {
  for (const ns of await listNamespaces()) {
    const owner = new RegExp(`^${FAMILY}-(\\d+)-`).exec(ns)?.[1];
    if (owner === undefined || isAlive(Number(owner))) continue;
    await killNamespace(ns);
    await ip(['netns', 'delete', ns]);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The hosts' addresses must not mean anything in this machine's own namespace either: checked, not assumed. */
async function requireSubnetUnused(): Promise<void> {
  const inSubnet = (addr: string | undefined) => addr !== undefined && addr.startsWith(`${SUBNET}.`);
  const addrs = JSON.parse(await ip(['-j', '-4', 'addr', 'show'])) as { ifname: string; addr_info: { local?: string }[] }[];
  for (const a of addrs) {
    for (const info of a.addr_info)
      if (inSubnet(info.local)) throw new Error(`${SUBNET}.0/24 is in use here: ${a.ifname} has ${info.local}`);
  }
  const routes = JSON.parse(await ip(['-j', '-4', 'route', 'show', 'table', 'all'])) as { dst: string; dev?: string }[];
  for (const r of routes) {
    const [net, bits] = r.dst.split('/');
    // A route to a network that holds SUBNET (10.213.0.0/16), or into it (10.213.0.64/26); `default` is neither.
    if (net === undefined || net === 'default' || !/^\d+\.\d+\.\d+\.\d+$/.test(net)) continue;
    if (overlaps(net, Number(bits ?? 32))) throw new Error(`${SUBNET}.0/24 is in use here: a route to ${r.dst} via ${r.dev ?? '?'}`);
  }
}

/** Whether a route to net/bits reaches into SUBNET; an aggregate wider than a /16 (10.0.0.0/8) is not a use of it. */
function overlaps(net: string, bits: number): boolean {
  if (bits < 16) return false;
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const block = 2 ** (32 - Math.min(bits, 24));
  return Math.floor(toInt(net) / block) === Math.floor(toInt(`${SUBNET}.0`) / block);
}

function collect(stream: NodeJS.ReadableStream, into: string[], log: WriteStream): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    log.write(chunk);
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    into.push(...parts);
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function stopProcess(proc: HostProcess, signal: NodeJS.Signals): Promise<void> {
  if (!isRunning(proc.child)) return;
  proc.child.kill(signal);
  const gone = await Promise.race([proc.exited.then(() => true), sleep(KILL_WAIT_MS).then(() => false)]);
  if (!gone) {
    proc.child.kill('SIGKILL');
    await within(`${proc.name} on ${proc.host} to exit after SIGKILL`, proc.exited, KILL_WAIT_MS);
  }
}
