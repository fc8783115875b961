import { afterAll, afterEach, beforeEach, describe, it, vi } from 'vitest';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alertId, type Alert, type Severity } from '../../../shared/contract/alert.js';
import { findBcmChip, GpioUnavailableError, listGpioChips, sysfsGpioNumber } from '../../../hardware/gpio/gpio-chip.js';
import { GpioDriverAlert } from '../../../hardware/gpio/gpio-driver-alert.js';
import type { PinWriter } from '../../../hardware/gpio/pin-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-gpio-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let treeNo = 0;
/** A fake /sys/class/gpio: one gpiochipN directory per chip, with the files the kernel gives it. */
function sysfs(chips: { label: string; base: number; ngpio: number }[]): string {
  const root = join(dir, `tree-${++treeNo}`);
  mkdirSync(root);
  writeFileSync(join(root, 'export'), '');
  for (const c of chips) {
    const chip = join(root, `gpiochip${c.base}`);
    mkdirSync(chip);
    writeFileSync(join(chip, 'label'), `${c.label}\n`);
    writeFileSync(join(chip, 'base'), `${c.base}\n`);
    writeFileSync(join(chip, 'ngpio'), `${c.ngpio}\n`);
  }
  return root;
}

/** As read on the boards, Raspberry Pi OS Bookworm (kernel 6.6+) unless said otherwise. */
const PI4 = () =>
  sysfs([
    { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
    { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
  ]);
// The Pi 5's always-on chips come first and lowest: the header is on RP1, not the lowest base.
const PI5 = () =>
  sysfs([
    { label: 'gpio-brcmstb@107d508500', base: 512, ngpio: 32 },
    { label: 'gpio-brcmstb@107d517c00', base: 544, ngpio: 15 },
    { label: 'pinctrl-rp1', base: 571, ngpio: 54 },
  ]);
const PI3_OLD_KERNEL = () =>
  sysfs([
    { label: 'pinctrl-bcm2835', base: 0, ngpio: 54 },
    { label: 'raspberrypi-exp-gpio', base: 504, ngpio: 8 },
  ]);
const PC = () => sysfs([{ label: 'INT34C5:00', base: 512, ngpio: 360 }]);

describe('sysfs number of a BCM pin', () => {
  it('Pi 4 on Bookworm: base 512 of pinctrl-bcm2711', () => {
    const root = PI4();
    assert.equal(findBcmChip(root).name, 'gpiochip512');
    assert.equal(sysfsGpioNumber(17, root), 529);
    assert.equal(sysfsGpioNumber(27, root), 539);
  });

  it('Pi 5: base 571 of pinctrl-rp1, past the lower-numbered chips', () => {
    const root = PI5();
    assert.equal(listGpioChips(root).length, 3);
    assert.equal(findBcmChip(root).label, 'pinctrl-rp1');
    assert.equal(sysfsGpioNumber(17, root), 588);
  });

  it('an old kernel with static numbering: base 0 of pinctrl-bcm2835', () => {
    assert.equal(sysfsGpioNumber(17, PI3_OLD_KERNEL()), 17);
  });

  it('a machine without the header controller: the error names the labels looked for and where', () => {
    const root = PC();
    assert.throws(
      () => sysfsGpioNumber(17, root),
      (err: Error) => {
        assert.ok(err instanceof GpioUnavailableError);
        for (const want of ['pinctrl-bcm2711', 'pinctrl-bcm2835', 'pinctrl-rp1', root, 'gpiochip512 (INT34C5:00)']) {
          assert.ok(err.message.includes(want), `${err.message} lacks ${want}`);
        }
        return true;
      },
    );
    assert.throws(() => findBcmChip(sysfs([])), /found no gpiochip\* there/);
    const missing = join(dir, 'no-such-dir');
    assert.throws(() => findBcmChip(missing), new RegExp(`${missing} does not exist`));
  });

  it('refuses a BCM number the chip does not have', () => {
    const root = PI4();
    assert.throws(() => sysfsGpioNumber(58, root), /BCM pin 58 is not a line of pinctrl-bcm2711 \(gpiochip512 has lines 0-57\)/);
    assert.throws(() => sysfsGpioNumber(-1, root), GpioUnavailableError);
    assert.throws(() => sysfsGpioNumber(1.5, root), GpioUnavailableError);
  });
});

/** A pin that records its level changes against the mocked clock. Unit tests only. */
class FakePin implements PinWriter {
  level = false;
  readonly changes: { at: number; on: boolean }[] = [];
  failing = false;
  constructor(private readonly clock: { now: number }) {}
  write(on: boolean): void {
    if (this.failing) throw new Error('EIO: i/o error, write');
    this.level = on;
    this.changes.push({ at: this.clock.now, on });
  }
  /** Level changes within [from, to), as times relative to `from`. */
  between(from: number, to: number): { at: number; on: boolean }[] {
    return this.changes.filter((c) => c.at >= from && c.at < to).map((c) => ({ at: c.at - from, on: c.on }));
  }
}

const alert = (rule: string, severity: Severity): Alert => ({
  id: alertId('truck-1', rule, 1_700_000_000_000),
  vehicle: 'truck-1',
  rule,
  severity,
  sensor: 'container_temp',
  episodeStart: 1_700_000_000_000,
  windowStart: 1_700_000_000_000,
  windowEnd: 1_700_000_010_000,
  observed: 61,
  expected: 50,
  message: `${rule} test`,
  live: true,
  raisedAt: 1_700_000_010_100,
  closedAt: 1_700_000_010_050,
});

/** `count` level changes every `periodMs`, the first one switching on at 0. */
const square = (periodMs: number, count: number) => Array.from({ length: count }, (_, i) => ({ at: i * periodMs, on: i % 2 === 0 }));
/** A line already at the cue's first level is not written again: compare from the first toggle on. */
const afterStart = (changes: { at: number; on: boolean }[]) => changes.filter((c) => c.at > 0);

describe('GpioDriverAlert: cues through an injected pin writer', () => {
  const clock = { now: 0 };
  let led: FakePin;
  let buzzer: FakePin;
  let cab: GpioDriverAlert;
  const opened: number[] = [];
  const errors: unknown[] = [];

  const advance = (ms: number) => {
    // One millisecond at a time, so each fake write is stamped with the time its timer fired.
    for (let i = 0; i < ms; i++) {
      clock.now++;
      vi.advanceTimersByTime(1);
    }
  };

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    clock.now = 0;
    led = new FakePin(clock);
    buzzer = new FakePin(clock);
    opened.length = 0;
    errors.length = 0;
    const pins = [led, buzzer];
    cab = new GpioDriverAlert({
      ledPin: 17,
      buzzerPin: 27,
      gpioRoot: PI4(),
      openPin: (gpio) => {
        opened.push(gpio);
        return pins.shift()!;
      },
      log: { warn: () => {}, error: (obj: unknown) => void errors.push(obj) },
    });
  });

  afterEach(async () => {
    await cab.close();
    vi.useRealTimers();
  });

  it('opens the lines at base + BCM of the chip found at run time', () => {
    assert.deepEqual(opened, [529, 539]);
  });

  it('info: the LED on and steady, the buzzer silent', async () => {
    await cab.raise(alert('door', 'info'));
    advance(5000);
    assert.deepEqual(led.changes, [{ at: 0, on: true }]);
    assert.deepEqual(buzzer.changes, []);
  });

  it('warning: the LED blinks at 1 Hz, one short beep', async () => {
    await cab.raise(alert('warm', 'warning'));
    advance(3000);
    assert.deepEqual(led.between(0, 3000), square(500, 6));
    assert.deepEqual(buzzer.changes, [
      { at: 0, on: true },
      { at: 150, on: false },
    ]);
  });

  it('critical: the LED blinks fast and the buzzer pulses until cleared', async () => {
    const hot = alert('hot', 'critical');
    await cab.raise(hot);
    advance(60_000);
    assert.deepEqual(led.between(0, 1000), square(125, 8));
    assert.deepEqual(buzzer.between(59_000, 60_000), square(250, 4));
    await cab.clear(hot.id);
    const clearedAt = clock.now;
    assert.equal(led.level, false);
    assert.equal(buzzer.level, false);
    advance(5000);
    assert.deepEqual(led.between(clearedAt + 1, clock.now + 1), []);
    assert.deepEqual(buzzer.between(clearedAt + 1, clock.now + 1), []);
  });

  it('several active alerts: the most severe cue plays, and clearing it falls back to the next', async () => {
    const warm = alert('warm', 'warning');
    const hot = alert('hot', 'critical');
    const door = alert('door', 'info');
    await cab.raise(warm);
    advance(1000);
    await cab.raise(hot);
    await cab.raise(door);
    const hotFrom = clock.now;
    advance(1000);
    assert.deepEqual(
      afterStart(led.between(hotFrom, hotFrom + 1000)),
      afterStart(square(125, 8)),
      'critical blink, not the info steady LED',
    );
    assert.deepEqual(buzzer.between(hotFrom, hotFrom + 1000), square(250, 4));

    await cab.clear(hot.id);
    const warmFrom = clock.now;
    advance(2000);
    assert.deepEqual(afterStart(led.between(warmFrom, warmFrom + 2000)), afterStart(square(500, 4)));
    assert.deepEqual(
      afterStart(buzzer.between(warmFrom, warmFrom + 2000)),
      [{ at: 150, on: false }],
      'back to the warning: one beep, then silence',
    );

    await cab.clear(warm.id);
    const infoFrom = clock.now;
    advance(2000);
    assert.equal(led.level, true, 'the info alert still lights the LED');
    assert.deepEqual(led.between(infoFrom + 1, infoFrom + 2000), []);

    await cab.clear(door.id);
    assert.equal(led.level, false);
    assert.equal(buzzer.level, false);
  });

  it('a second alert at the showing level beeps again; a lower one changes nothing', async () => {
    await cab.raise(alert('warm', 'warning'));
    advance(2000);
    await cab.raise(alert('info-only', 'info'));
    advance(100);
    assert.equal(buzzer.changes.length, 2);
    await cab.raise(alert('tyre', 'warning'));
    advance(1000);
    assert.equal(buzzer.changes.length, 4);
  });

  it('clearing an alert that is not active, or twice, changes nothing', async () => {
    const hot = alert('hot', 'critical');
    await cab.raise(hot);
    advance(10);
    const before = led.changes.length;
    await cab.clear('truck-1.other.1');
    advance(100);
    assert.equal(led.changes.length, before, 'the critical cue kept its phase');
    await cab.clear(hot.id);
    await cab.clear(hot.id);
    assert.equal(led.level, false);
  });

  it('close silences the cab and stops every timer', async () => {
    await cab.raise(alert('hot', 'critical'));
    advance(300);
    await cab.close();
    const n = led.changes.length + buzzer.changes.length;
    advance(5000);
    await cab.raise(alert('late', 'critical'));
    assert.equal(led.changes.length + buzzer.changes.length, n);
    assert.equal(led.level, false);
    assert.equal(buzzer.level, false);
  });

  it('a failing line is reported and stops its cue; the other line and the caller carry on', async () => {
    buzzer.failing = true;
    await cab.raise(alert('hot', 'critical'));
    advance(1000);
    assert.equal(errors.length, 1);
    assert.match(JSON.stringify(errors[0]), /EIO.*buzzer on BCM 27 \(gpio539\)/);
    assert.equal(led.between(0, 1000).length, 8, 'the LED still blinks');
  });
});

describe('GpioDriverAlert: construction off a Pi', () => {
  it('fails before opening a line when the header controller is missing', () => {
    let opens = 0;
    assert.throws(
      () => new GpioDriverAlert({ ledPin: 17, buzzerPin: 27, gpioRoot: PC(), openPin: () => ({ write: () => void opens++ }) }),
      /no Raspberry Pi GPIO header controller: looked for a gpiochip\*\/label of pinctrl-bcm2711, pinctrl-bcm2835, pinctrl-rp1 under /,
    );
    assert.equal(opens, 0);
  });

  it('refuses the LED and the buzzer on one line', () => {
    assert.throws(
      () => new GpioDriverAlert({ ledPin: 17, buzzerPin: 17, gpioRoot: PI4(), openPin: () => ({ write() {} }) }),
      /both on BCM pin 17/,
    );
  });

  it('with onoff where Gpio.accessible is false: a clear error naming the export file and the gpio group', (t) => {
    const { Gpio } = createRequire(import.meta.url)('onoff') as typeof import('onoff');
    // On a Pi with writable GPIO this would drive real lines: that case is the device guide's checklist.
    if (Gpio.accessible) return t.skip('GPIO is accessible on this machine');
    assert.throws(
      () => new GpioDriverAlert({ ledPin: 17, buzzerPin: 27, gpioRoot: PI4() }),
      /GPIO is not accessible: onoff could not open \/sys\/class\/gpio\/export for writing .*gpio group/,
    );
  });
});
