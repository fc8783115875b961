import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_GPIO_ROOT = '/sys/class/gpio';

/**
 * Labels of the controller that owns the 40-pin header's BCM lines: the SoC's own on a
 * Pi 4 (bcm2711) and older (bcm2835), the RP1 south bridge on a Pi 5. Other chips on the
 * same board (the firmware's expander, the Pi 5's AON block) have lines numbered from 0
 * too, so the label, not the lowest base, is what identifies the header.
 */
export const BCM_CHIP_LABELS = ['pinctrl-bcm2711', 'pinctrl-bcm2835', 'pinctrl-rp1'] as const;

export interface GpioChip {
  /** Directory name under the root, e.g. `gpiochip512`. */
  name: string;
  label: string;
  /** sysfs number of the chip's line 0. */
  base: number;
  ngpio: number;
}

export class GpioUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpioUnavailableError';
  }
}

/** Every gpiochip under `root`, read from its `label`, `base` and `ngpio` files. */
export function listGpioChips(root = DEFAULT_GPIO_ROOT): GpioChip[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => name.startsWith('gpiochip'))
    .sort()
    .map((name) => {
      const read = (file: string) => readFileSync(join(root, name, file), 'utf8').trim();
      return { name, label: read('label'), base: Number(read('base')), ngpio: Number(read('ngpio')) };
    });
}

/**
 * The chip carrying the header's BCM lines. Kernels since 6.6 (Raspberry Pi OS Bookworm)
 * allocate sysfs numbers dynamically, so the base differs between boards and kernels
 * (0, 512, 571, ...) and must be read, never assumed.
 */
export function findBcmChip(root = DEFAULT_GPIO_ROOT): GpioChip {
  const chips = listGpioChips(root);
  const chip = chips.find((c) => (BCM_CHIP_LABELS as readonly string[]).includes(c.label));
  if (chip !== undefined) {
    if (!Number.isInteger(chip.base) || chip.base < 0) {
      throw new GpioUnavailableError(`${join(root, chip.name, 'base')}: expected a sysfs GPIO number, got ${chip.base}`);
    }
    return chip;
  }
  const wanted = `a gpiochip*/label of ${BCM_CHIP_LABELS.join(', ')}`;
  const found =
    chips.length === 0
      ? existsSync(root)
        ? 'found no gpiochip* there'
        : `${root} does not exist (not a Raspberry Pi, or a kernel without sysfs GPIO)`
      : `found only ${chips.map((c) => `${c.name} (${c.label})`).join(', ')}`;
  throw new GpioUnavailableError(`no Raspberry Pi GPIO header controller: looked for ${wanted} under ${root}; ${found}`);
}

/** The sysfs number of a BCM pin: what onoff's `new Gpio(n)` and `/sys/class/gpio/export` expect. */
export function sysfsGpioNumber(bcm: number, root = DEFAULT_GPIO_ROOT): number {
  const chip = findBcmChip(root);
  if (!Number.isInteger(bcm) || bcm < 0 || bcm >= chip.ngpio) {
    throw new GpioUnavailableError(`BCM pin ${bcm} is not a line of ${chip.label} (${chip.name} has lines 0-${chip.ngpio - 1})`);
  }
  return chip.base + bcm;
}
