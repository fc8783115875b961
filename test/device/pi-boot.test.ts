import assert from 'node:assert/strict';
import { rmSync, truncateSync as truncate } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Elm327Emulator } from '../../simulators/elm327-emulator.js';
import { NmeaGpsEmulator } from '../../simulators/nmea-gps-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { appendBoilingEngine } from '../support/alert-fixtures.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, tempDir, waitFor } from '../support/harness.js';
import { builtImage, flashCopy, PiVm, ptyToSocket, provisionAgent } from '../support/pi-vm.js';
import { queryFile, queryValue } from '../support/sqlite.js';

const VEHICLE = 'pi-1';
const SPARE_BYTES = 256 * 1024 * 1024;
/** The USB serial numbers of the two emulated FTDI adapters, as udev names them under /dev/serial/by-id. */
const byId = (serial: string) => `/dev/serial/by-id/usb-QEMU_QEMU_USB_SERIAL_${serial}-if00-port0`;

/**
 * The image as a truck runs it: the card's own kernel, initrd and cmdline.txt booted under
 * qemu-system-aarch64, the agent's config put on the boot partition as an installer does,
 * a GPS receiver and an ELM327 adapter emulated on this machine behind emulated USB serial
 * adapters, the gateway and detector on this machine (10.0.2.2 to the guest). The guest is
 * looked into through systemd's debug shell; nothing in the image is changed for the test.
 */
describe('the Raspberry Pi image booted under QEMU', () => {
  const image = builtImage();
  const dir = tempDir('fleet-pi-boot-');
  const disk = join(dir, 'card.img');
  const model = new TruckModel({ seed: 7, startTs: Date.now() - 10 * 60_000 });
  let cloud: Cloud;
  let vm: PiVm;
  let gps: NmeaGpsEmulator;
  let obd: Elm327Emulator;
  let cables: { stop(): void }[] = [];
  const agentUnit = async (...props: string[]) =>
    Object.fromEntries(
      (await vm.sh(`systemctl show fleet-agent -p ${props.join(',')}`))
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
  const seqs = () => storedSeqs(cloud.detector, VEHICLE).filter((s) => s < 1_000_000);

  beforeAll(async () => {
    cloud = await new Cloud({
      dir,
      rules: { windowMs: 1000, rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 130, severity: 'critical' }] },
    }).start();
    const gatewayPort = Number(new URL(cloud.mqttUrl).port);

    cables = [await ptyToSocket(join(dir, 'gps'), join(dir, 'gps.sock')), await ptyToSocket(join(dir, 'obd'), join(dir, 'obd.sock'))];
    gps = new NmeaGpsEmulator({ path: join(dir, 'gps'), model, noFixMs: 1000 });
    obd = new Elm327Emulator({ path: join(dir, 'obd'), model });

    flashCopy(image, disk);
    // A card larger than the image, as every card is: the first boot grows the root into the rest.
    truncate(disk, image.rootPartition.startBytes + image.rootPartition.sizeBytes + SPARE_BYTES);
    provisionAgent(image, disk, {
      vehicle: VEHICLE,
      gatewayPort,
      sensors: 'hardware',
      gpsPath: byId('FLEETGPS'),
      obdPath: byId('FLEETOBD'),
      obdPollMs: 1000,
    });
    vm = new PiVm({
      image,
      disk,
      dir,
      usbSerial: { FLEETGPS: join(dir, 'gps.sock'), FLEETOBD: join(dir, 'obd.sock') },
      opsPort: await freePort(),
    });
    await vm.boot();
    await gps.start();
    await obd.open();
  });

  afterAll(async () => {
    await vm?.powerCut();
    await gps?.stop();
    await obd?.close();
    for (const c of cables) c.stop();
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies the config from the boot partition and starts the agent under systemd as its unit says', async () => {
    await waitFor('fleet-agent active', async () => (await vm.shTry('systemctl is-active fleet-agent')).out === 'active', 180_000, 1000);
    assert.match(await vm.sh('cat /proc/cmdline'), new RegExp(`root=PARTUUID=${image.diskId}-02`));
    assert.equal(await vm.sh('findmnt -n -o FSTYPE /boot/firmware'), 'vfat');
    assert.match(await vm.sh('cat /etc/fleet/agent.json'), new RegExp(`"vehicle": "${VEHICLE}"`));
    assert.equal(await vm.sh('stat -c %U:%G:%a /etc/fleet/agent.json'), 'root:fleet:640');
    assert.equal(
      await vm.sh('ls -1 /boot/firmware/fleet'),
      'APPLIED.txt\nREADME.txt',
      'the config, which may hold secrets, is gone from the card',
    );
    assert.equal(await vm.sh('hostname'), 'fleet-pi-1');
    const rootBytes = Number(await vm.sh('cat /sys/class/block/vda2/size')) * 512;
    assert.equal(rootBytes, image.rootPartition.sizeBytes + SPARE_BYTES, 'the root partition grown to the end of the card');
    const fsBytes = Number(await vm.sh('findmnt -n -b -o SIZE /'));
    assert.ok(fsBytes > image.rootPartition.sizeBytes, `the file system grown with it (${fsBytes} bytes)`);

    const unit = await agentUnit(
      'Type',
      'User',
      'WatchdogUSec',
      'NRestarts',
      'MainPID',
      'ExecMainStartTimestampMonotonic',
      'ActiveEnterTimestampMonotonic',
    );
    assert.equal(unit.Type, 'notify');
    assert.equal(unit.User, 'fleet');
    assert.equal(unit.WatchdogUSec, '30s');
    assert.equal(unit.NRestarts, '0');
    // Type=notify: active is READY=1, sent once the buffer is open and the sensors started.
    const startMs = (Number(unit.ActiveEnterTimestampMonotonic) - Number(unit.ExecMainStartTimestampMonotonic)) / 1000;
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(await vm.sh(`cat /proc/${unit.MainPID}/status`))?.[1]);
    assert.ok(rssKb > 0);
    assert.equal(await vm.sh(`stat -c %U /proc/${unit.MainPID}`), 'fleet');
    // TCG emulation: functional figures, not a Pi's performance.
    process.stdout.write(
      `# device ${JSON.stringify({ arch: await vm.sh('uname -m'), agentStartMs: Math.round(startMs), agentRssMB: Math.round(rssKb / 1024) })}\n`,
    );
  });

  it('reads the GPS and the ELM327 through emulated USB serial adapters, and its readings arrive', async () => {
    assert.match(await vm.sh(`readlink -f ${byId('FLEETGPS')} ${byId('FLEETOBD')}`), /^\/dev\/ttyUSB\d\n\/dev\/ttyUSB\d$/);
    const sensors = () =>
      new Set(
        queryFile<{ sensor: string }>(cloud.detector.store.location, 'SELECT DISTINCT sensor FROM readings WHERE vehicle = ?', VEHICLE).map(
          (r) => r.sensor,
        ),
      );
    await waitFor(
      'GPS, speed and coolant readings from the guest in the store',
      () => ['gps', 'speed', 'engine_temp', 'rpm'].every((s) => sensors().has(s)),
      120_000,
      1000,
    );
    const h = await waitFor(
      'the agent connected',
      async () => {
        const x = await vm.agentHealth();
        return x?.connected ? x : undefined;
      },
      30_000,
      500,
    );
    assert.equal(h.sensors.gps0?.state, 'ok', JSON.stringify(h.sensors));
    assert.equal(h.sensors.obd0?.state, 'ok', JSON.stringify(h.sensors));
    const gpsRow = queryFile<{ lat: number; lon: number }>(
      cloud.detector.store.location,
      "SELECT lat, lon FROM readings WHERE vehicle = ? AND sensor = 'gps' ORDER BY seq DESC LIMIT 1",
      VEHICLE,
    )[0];
    assert.ok(gpsRow && Math.abs(gpsRow.lat) > 0 && Math.abs(gpsRow.lon) > 0, 'a fix with a position');
  });

  it('shows a live alert in the cab, and the cloud hears it was shown', async () => {
    appendBoilingEngine(join(dir, 'gateway', 'stream.db'), VEHICLE);
    const alertId = await waitFor(
      'the alert raised',
      () => queryValue<string>(cloud.detector.store.location, 'SELECT id FROM alerts WHERE vehicle = ?', VEHICLE),
      30_000,
      200,
    );
    await waitFor(
      'the agent in the guest showing it',
      async () => (await vm.sh(`journalctl -u fleet-agent -o cat | grep -c '"alertId":"${alertId}"' || true`)) !== '0',
      60_000,
      1000,
    );
    await waitFor(
      'the delivery acknowledged',
      () =>
        queryValue<string>(
          cloud.detector.store.location,
          "SELECT state FROM deliveries WHERE alert_id = ? AND channel = 'driver'",
          alertId,
        ) === 'acknowledged',
      60_000,
      500,
    );
  });

  it('refuses a config dropped on the boot partition that the agent would not start with, keeping its own', async () => {
    const pid = (await agentUnit('MainPID')).MainPID;
    await vm.sh(`printf '{ "vehicle": "truck 9" }' > /boot/firmware/fleet/agent.json && systemctl restart fleet-provision`);
    assert.equal(await vm.sh('ls -1 /boot/firmware/fleet'), 'APPLIED.txt\nREADME.txt\nREJECTED.txt\nagent.json.rejected');
    assert.match(await vm.sh('cat /boot/firmware/fleet/REJECTED.txt'), /vehicle: /);
    assert.match(await vm.sh('cat /etc/fleet/agent.json'), new RegExp(`"vehicle": "${VEHICLE}"`));
    assert.equal((await agentUnit('MainPID')).MainPID, pid, 'the agent went on');
  });

  it('has a hung agent restarted by the watchdog, losing nothing', async () => {
    const before = await agentUnit('MainPID', 'NRestarts');
    const { nextSeq } = await waitFor('the agent health', () => vm.agentHealth(), 10_000, 500);
    // SIGSTOP: the event loop stops, so do its watchdog pings (WatchdogSec=30).
    await vm.sh(`kill -STOP ${before.MainPID}`);
    const after = await waitFor(
      'systemd restarting the hung agent',
      async () => {
        const u = await agentUnit('MainPID', 'NRestarts', 'ActiveState');
        return u.NRestarts === '1' && u.ActiveState === 'active' && u.MainPID !== before.MainPID ? u : undefined;
      },
      150_000,
      2000,
    );
    assert.notEqual(after.MainPID, '0');
    assert.match(await vm.sh('journalctl -u fleet-agent -o cat'), /[Ww]atchdog timeout/);
    // Everything taken before the hang, and since, reaches the store, each seq once.
    const h = await waitFor(
      'the buffer sent',
      async () => {
        const x = await vm.agentHealth();
        return x && x.buffered === 0 && x.nextSeq > nextSeq ? x : undefined;
      },
      120_000,
      500,
    );
    const sent = h.nextSeq - 1;
    await waitFor(`the ${sent} readings the agent sent stored`, () => seqs().length >= sent, 30_000, 500);
    assert.deepEqual(
      seqs().slice(0, sent),
      Array.from({ length: sent }, (_, i) => i + 1),
      'no seq missing',
    );
  });
});
