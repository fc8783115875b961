import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { waitFor, within } from '../support/harness.js';
import { Network, SUBNET } from '../support/hosts.js';

/**
 * The network-namespace harness the multi-host tests build on (test/support/hosts.ts):
 * hosts reach each other by address and this machine's own namespace gains nothing; a
 * partitioned host is cut off both ways and back after healing; a host's processes die
 * together; teardown, and the next run after a crashed one, leave nothing behind.
 * Needs root, as CI runs.
 */
const ECHO_PORT = 7000;
/**
 * Links in this machine's own namespace with the names the harness gives its links (br0,
 * the bridge's ports h0, h1 …, the leftover below's x0 and x1). A host's eth0 cannot be
 * told from the machine's own, and other tests may add links meanwhile: only these names
 * are looked for.
 */
const ownLinksLikeOurs = () =>
  (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => /^(br0|h\d+|x[01])$/.test(n));
const ownAddresses = () => execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });

describe('hosts as network namespaces', () => {
  let net: Network;

  beforeAll(async () => {
    net = await Network.create(['alpha', 'beta']);
    net.start('alpha', 'echo', ['socat', `TCP-LISTEN:${ECHO_PORT},bind=${net.address('alpha')},reuseaddr,fork`, 'PIPE']);
  });

  afterAll(async () => {
    await net?.destroy();
  });

  /** One line sent from `from` to alpha's echo server, and what came back (undefined: no connection). */
  const echo = async (from: string, text: string) => {
    const r = await net.exec(from, ['socat', '-T', '3', '-', `TCP:${net.address('alpha')}:${ECHO_PORT},connect-timeout=2`], {
      input: `${text}\n`,
      timeoutMs: 10_000,
    });
    return r.code === 0 ? r.stdout.trim() : undefined;
  };

  it('gives each host its own address, and reaches one from another over TCP', async () => {
    assert.equal(net.address('alpha'), `${SUBNET}.11`);
    assert.equal(net.address('beta'), `${SUBNET}.12`);
    assert.equal(await waitFor('the echo server on alpha', () => echo('beta', 'hello'), 15_000, 200), 'hello');
    assert.equal(await echo('alpha', 'from alpha itself'), 'from alpha itself');
  });

  it("adds no link and no address to this machine's own namespace", () => {
    assert.deepEqual(ownLinksLikeOurs(), []);
    assert.ok(!ownAddresses().includes(`${SUBNET}.`), ownAddresses());
    const routes = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
    assert.ok(!routes.includes(`${SUBNET}.`), `no route of ours leads into the network:\n${routes}`);
  });

  it('cuts a partitioned host off both ways without telling its processes, and reconnects it on heal', async () => {
    await net.partition('alpha');
    try {
      const started = Date.now();
      assert.equal(await echo('beta', 'during the partition'), undefined, 'beta cannot reach alpha');
      assert.ok(Date.now() - started < 10_000, 'the attempt ends by itself');
      const out = await net.exec('alpha', ['socat', '-T', '2', '-', `TCP:${net.address('beta')}:${ECHO_PORT},connect-timeout=2`], {
        timeoutMs: 10_000,
      });
      assert.notEqual(out.code, 0, 'alpha cannot reach beta');
      const server = net.process('alpha', 'echo');
      assert.equal(server.child.exitCode, null, "alpha's echo server is still running: a cut link is not an exit");
    } finally {
      await net.heal('alpha');
    }
    assert.equal(await waitFor('alpha reachable after heal', () => echo('beta', 'after heal'), 15_000, 200), 'after heal');
  });

  it("kills every process of a crashed host, also those its processes started, and leaves other hosts' alone", async () => {
    const parent = net.start('alpha', 'parent', ['sh', '-c', 'sleep 600 & sleep 600; wait']);
    const other = net.start('beta', 'other', ['sleep', '600']);
    const inAlpha = () =>
      execFileSync('ip', ['netns', 'pids', net.namespace('alpha')], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
    await waitFor('the shell and both sleeps in alpha', () => inAlpha().length >= 4, 10_000, 50);
    await net.killHost('alpha');
    assert.deepEqual(inAlpha(), [], 'nothing left running in alpha');
    assert.equal((await parent.exited).signal, 'SIGKILL');
    assert.equal((await net.process('alpha', 'echo').exited).signal, 'SIGKILL');
    assert.equal(other.child.exitCode, null, "beta's process runs on");

    const echoAgain = net.startAgain('alpha', 'echo');
    assert.notEqual(echoAgain.child.pid, undefined);
    assert.equal(await waitFor('the echo server back on alpha', () => echo('beta', 'back'), 15_000, 200), 'back');
  });

  it('restarts a process the same way, with a new process id', async () => {
    const before = net.process('beta', 'other');
    const after = await net.restart('beta', 'other');
    assert.equal((await within('the old process to end', before.exited, 5000)).signal, 'SIGKILL');
    assert.notEqual(after.child.pid, before.child.pid);
    assert.equal(after.child.exitCode, null);
    assert.equal(net.process('beta', 'other'), after);
  });
});

describe('teardown', () => {
  it('removes every namespace and link it made, also when the test process that made them died', async () => {
    // A network a SIGKILLed test process left: its namespace named after a process id no longer running.
    const dead = spawnSync('true').pid;
    const leftover = `fleetnet-${dead}-1-gamma`;
    execFileSync('ip', ['netns', 'add', leftover]);
    execFileSync('ip', ['-n', leftover, 'link', 'add', 'x0', 'type', 'veth', 'peer', 'name', 'x1']);
    const orphan = spawn('ip', ['netns', 'exec', leftover, 'sleep', '600'], { stdio: 'ignore' });
    const orphanGone = new Promise<NodeJS.Signals | null>((resolve) => orphan.once('exit', (_code, signal) => resolve(signal)));

    const net = await Network.create(['delta']);
    assert.ok(!(await Network.namespaces()).includes(leftover), "a dead test process's namespace is removed");
    assert.equal(await within('the process left in it to be killed', orphanGone, 5000), 'SIGKILL');
    const mine = (await Network.namespaces()).filter((n) => n.startsWith(`${net.prefix}-`));
    assert.deepEqual(mine.sort(), [`${net.prefix}-delta`, `${net.prefix}-net`]);
    net.start('delta', 'sleeper', ['sleep', '600']);

    await net.destroy();
    assert.deepEqual(
      (await Network.namespaces()).filter((n) => n.startsWith(`${net.prefix}-`)),
      [],
      'no namespace of this network left',
    );
    assert.deepEqual(ownLinksLikeOurs(), [], "no link of ours in this machine's namespace");
    assert.equal((await net.process('delta', 'sleeper').exited).signal, 'SIGKILL');
  });
});
