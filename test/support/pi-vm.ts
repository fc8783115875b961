import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { getJson, sleep, waitFor } from './harness.js';
import { ROOT } from './paths.js';

/** What hardware/pi/image/build.sh wrote next to the image (image.json). */
export interface PiImage {
  dir: string;
  image: string;
  diskId: string;
  bootPartition: { partuuid: string; startBytes: number; sizeBytes: number };
  rootPartition: { partuuid: string; startBytes: number; sizeBytes: number };
  kernel: string;
  kernelVersion: string;
  initrd: string;
  node: string;
}

/** Where the tests find the image: npm run setup builds it there (hardware/pi/image/build.sh). */
export const IMAGE_DIR = process.env.FLEET_IMAGE_DIR ?? join(ROOT, 'var', 'image');

export function builtImage(dir = IMAGE_DIR): PiImage {
  const manifest = join(dir, 'image.json');
  if (!existsSync(manifest))
    throw new Error(`${manifest} is missing: build the Raspberry Pi image first (npm run setup runs sudo hardware/pi/image/build.sh)`);
  return { dir, ...(JSON.parse(readFileSync(manifest, 'utf8')) as Omit<PiImage, 'dir'>) };
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 120_000 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A card of one's own: a sparse copy of the image, as written to a new SD card. */
export function flashCopy(image: PiImage, to: string): string {
  run('cp', ['--sparse=always', join(image.dir, image.image), to]);
  return to;
}

/** The boot partition of a disk file, for mtools: `file@@offset`. */
const bootOf = (image: PiImage, disk: string) => `${disk}@@${image.bootPartition.startBytes}`;

/** Puts files on a card's boot partition, as an installer does from a laptop. */
export function putOnBootPartition(image: PiImage, disk: string, files: Record<string, string>, dir = 'fleet'): void {
  const staging = `${disk}.put`;
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(staging, content);
    run('mcopy', ['-o', '-i', bootOf(image, disk), staging, `::/${dir}/${name}`]);
  }
  rmSync(staging, { force: true });
}

/** Where the agent in the guest serves /healthz; the tests reach it through a port forward. */
const GUEST_OPS_PORT = 9101;

/**
 * An agent config on the card's boot partition, as an installer puts it there: the gateway
 * on this machine (10.0.2.2 to the guest), the ops server on every address of the guest so
 * the forward of PiVm's `opsPort` reaches it, and the test's own settings.
 */
export function provisionAgent(
  image: PiImage,
  disk: string,
  settings: { vehicle: string; gatewayPort: number } & Record<string, unknown>,
): void {
  const { gatewayPort, ...rest } = settings;
  const config = {
    mqttUrl: `mqtt://10.0.2.2:${gatewayPort}`,
    dataDir: '/var/lib/fleet',
    opsHost: '0.0.0.0',
    opsPort: GUEST_OPS_PORT,
    ...rest,
  };
  putOnBootPartition(image, disk, { 'agent.json': JSON.stringify(config, null, 2) });
}

/** What the tests read of the guest agent's /healthz. */
export interface GuestAgentHealth {
  connected: boolean;
  buffered: number;
  nextSeq: number;
  sensors: Record<string, { state: string }>;
}

/** A file of a card's boot partition, or undefined when it is not there. */
export function readBootPartition(image: PiImage, disk: string, path: string): string | undefined {
  const r = spawnSync('mtype', ['-i', bootOf(image, disk), `::/${path}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** The names on a card's boot partition (top level, or `dir`). */
export function listBootPartition(image: PiImage, disk: string, dir = ''): string[] {
  return run('mdir', ['-b', '-i', bootOf(image, disk), `::/${dir}`])
    .split('\n')
    .map((l) => l.trim().replace(/^::\/(?:[^/]*\/)*/, ''))
    .filter(Boolean);
}

/** The partition table of a disk file, as sfdisk reads it. */
export function partitionTable(disk: string): {
  id: string;
  partitions: { start: number; size: number; type: string; bootable?: boolean }[];
} {
  const t = (
    JSON.parse(run('sfdisk', ['--json', disk])) as {
      partitiontable: { id: string; partitions: { start: number; size: number; type: string; bootable?: boolean }[] };
    }
  ).partitiontable;
  return { id: t.id, partitions: t.partitions };
}

export interface PiVmOptions {
  image: PiImage;
  /** The card: a disk file of the image's layout (flashCopy). */
  disk: string;
  /** Logs and sockets go here. */
  dir: string;
  /** Unix sockets on this machine, each the far end of an emulated USB serial adapter (an FTDI FT232, /dev/ttyUSB*), by its USB serial number. */
  usbSerial?: Record<string, string>;
  /** A free port of this machine's 127.0.0.1 forwarded to the guest agent's /healthz (see provisionAgent). */
  opsPort: number;
}

/**
 * A Raspberry Pi 4-class machine under qemu-system-aarch64 (-M virt, TCG): the image's own
 * kernel and initrd, the root found by the PARTUUID in the card's cmdline.txt, the card as a
 * virtio disk opened without host caching (cache=directsync: a kill of QEMU is a power cut,
 * the guest's unflushed writes are gone), user networking (the host is 10.0.2.2), and
 * systemd's debug shell on a virtio console, through which the test looks inside.
 */
export class PiVm {
  private qemu: ChildProcess | undefined;
  private shell: Socket | undefined;
  private shellOut = '';
  private commands = 0;
  private boots = 0;
  /** How the last QEMU process ended, once it has. */
  exit: string | undefined;

  constructor(private readonly opts: PiVmOptions) {
    // A test that dies with the machine on must not leave QEMU running behind it.
    process.once('exit', () => this.qemu?.kill('SIGKILL'));
  }

  get consoleLog(): string {
    return join(this.opts.dir, `console-${this.boots}.log`);
  }

  /** The kernel command line: the card's own cmdline.txt with the consoles of this machine. */
  cmdline(): string {
    const card = readBootPartition(this.opts.image, this.opts.disk, 'cmdline.txt');
    if (card === undefined) throw new Error(`${this.opts.disk} has no cmdline.txt on its boot partition`);
    const own = card
      .trim()
      .split(/\s+/)
      .filter((a) => !a.startsWith('console='));
    // getty_auto=0: systemd would otherwise start a login prompt on hvc0 too, fighting the shell for it.
    // No NTP servers are reachable: the guest's clock is QEMU's RTC, this machine's.
    return [...own, 'console=ttyAMA0', 'systemd.debug_shell=hvc0', 'systemd.getty_auto=0', 'systemd.mask=systemd-timesyncd.service'].join(
      ' ',
    );
  }

  /** Powers the machine on and waits until its debug shell answers (systemd is up to basic.target). */
  async boot(timeoutMs = 180_000): Promise<void> {
    if (this.qemu) throw new Error('the machine is already on');
    this.boots += 1;
    this.exit = undefined;
    this.shellOut = '';
    const shellSock = join(this.opts.dir, 'shell.sock');
    rmSync(shellSock, { force: true });
    const { image } = this.opts;
    const args = [
      '-M',
      'virt',
      '-cpu',
      'cortex-a72',
      '-smp',
      '2',
      '-m',
      '1024',
      '-nographic',
      '-no-reboot',
      '-kernel',
      join(image.dir, image.kernel),
      '-initrd',
      join(image.dir, image.initrd),
      '-append',
      this.cmdline(),
      '-drive',
      `file=${this.opts.disk},format=raw,if=virtio,cache=directsync,aio=threads`,
      '-netdev',
      `user,id=n0,hostfwd=tcp:127.0.0.1:${this.opts.opsPort}-:${GUEST_OPS_PORT}`,
      '-device',
      'virtio-net-pci,netdev=n0,romfile=',
      '-device',
      'virtio-serial-pci',
      '-chardev',
      `socket,id=shell,path=${shellSock},server=on,wait=off`,
      '-device',
      'virtconsole,chardev=shell',
      '-device',
      'qemu-xhci,id=xhci',
    ];
    for (const [serial, sock] of Object.entries(this.opts.usbSerial ?? {})) {
      const id = `usb-${serial}`;
      args.push('-chardev', `socket,id=${id},path=${sock}`, '-device', `usb-serial,bus=xhci.0,chardev=${id},serial=${serial}`);
    }
    const log = createWriteStream(this.consoleLog);
    const qemu = spawn('qemu-system-aarch64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.qemu = qemu;
    qemu.stdout.pipe(log);
    qemu.stderr.pipe(log);
    qemu.once('exit', (code, signal) => {
      this.exit = signal ?? `exit ${code}`;
      this.qemu = undefined;
      this.shell?.destroy();
      this.shell = undefined;
    });
    // Read through a function: TypeScript cannot see the exit handler change it.
    const ended = (): string | undefined => this.exit;
    await waitFor(`QEMU's shell socket (console: ${this.consoleLog})`, () => ended() ?? existsSync(shellSock), 20_000);
    const early = ended();
    if (early) throw new Error(`QEMU ended at once (${early}): ${readFileSync(this.consoleLog, 'utf8').slice(-2000)}`);
    const shell = connect(shellSock);
    this.shell = shell;
    shell.setEncoding('utf8').on('data', (s: string) => (this.shellOut += s));
    shell.on('error', () => undefined);
    // The shell appears once systemd starts debug-shell.service; poke it until it answers.
    await waitFor(
      `the debug shell of boot ${this.boots} (console: ${this.consoleLog})`,
      async () => {
        const gone = ended();
        if (gone) throw new Error(`the machine stopped while booting (${gone}); console: ${this.consoleLog}`);
        shell.write('echo SHELL-$((6*7))\n');
        await sleep(1000);
        return this.shellOut.includes('SHELL-42');
      },
      timeoutMs,
      0,
    );
    await this.sh('stty -echo; export PS1= SYSTEMD_PAGER= SYSTEMD_COLORS=0');
  }

  /** Runs a command in the guest as root; its output, or a failure with it when the command exits non-zero. */
  async sh(command: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.shTry(command, timeoutMs);
    if (r.code !== 0) throw new Error(`guest: ${command}: exit ${r.code}: ${r.out}`);
    return r.out;
  }

  async shTry(command: string, timeoutMs = 60_000): Promise<{ code: number; out: string }> {
    const shell = this.shell;
    if (!shell) throw new Error(`the machine is off (${this.exit ?? 'not booted'})`);
    const n = ++this.commands;
    const begin = `<<B${n}>>`;
    const end = new RegExp(`<<E${n} (\\d+)>>`);
    this.shellOut = '';
    // The markers are made by the shell (printf), so the echoed command line never matches them.
    shell.write(`printf '<<%s%d>>\\n' B ${n}; { ${command}\n} 2>&1; printf '<<E%d %d>>\\n' ${n} $?\n`);
    const m = await waitFor(`guest: ${command}`, () => end.exec(this.shellOut) ?? (this.exit ? 'off' : undefined), timeoutMs, 20);
    if (m === 'off') throw new Error(`guest: ${command}: the machine went off (${this.exit})`);
    const text = this.shellOut.slice(0, m.index);
    const out = text
      .slice(text.indexOf(begin) >= 0 ? text.indexOf(begin) + begin.length : 0)
      .replace(/\r/g, '')
      .trim();
    return { code: Number(m[1]), out };
  }

  /** The guest agent's /healthz, or undefined while it does not answer. */
  async agentHealth(): Promise<GuestAgentHealth | undefined> {
    try {
      const r = await getJson<GuestAgentHealth>(`http://127.0.0.1:${this.opts.opsPort}/healthz`);
      return r.status === 200 ? r.body : undefined;
    } catch {
      return undefined;
    }
  }

  /** Pulls the power: QEMU killed, whatever the guest had not written to its disk is gone. */
  async powerCut(): Promise<void> {
    const q = this.qemu;
    if (!q) return;
    const gone = new Promise<void>((resolve) => q.once('exit', () => resolve()));
    q.kill('SIGKILL');
    await gone;
  }

  /** A clean shutdown (systemctl poweroff), or a power cut if it does not end in time. */
  async shutdown(timeoutMs = 90_000): Promise<void> {
    const q = this.qemu;
    if (!q) return;
    const gone = new Promise<void>((resolve) => q.once('exit', () => resolve()));
    this.shell?.write('systemctl poweroff\n');
    const timer = setTimeout(() => q.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(timer);
  }
}

/**
 * `socat pty,link=PATH UNIX-LISTEN:SOCK`: a serial cable from a pty on this machine (where a
 * device emulator writes) to the socket QEMU connects an emulated USB adapter to.
 */
export async function ptyToSocket(pty: string, sock: string): Promise<{ stop(): void }> {
  rmSync(sock, { force: true });
  const child = spawn('socat', [`pty,raw,echo=0,link=${pty}`, `UNIX-LISTEN:${sock}`], { stdio: 'ignore' });
  process.on('exit', () => child.kill('SIGKILL'));
  await waitFor(`socat's ${pty} and ${sock}`, () => existsSync(pty) && existsSync(sock), 5000);
  return { stop: () => child.kill('SIGTERM') };
}
