import { createRequire } from 'node:module';
import { GpioUnavailableError } from './gpio-chip.js';

/** One output line (the LED's or the buzzer's), driven low when opened: all the cue logic needs from the hardware. */
export interface PinWriter {
  write(on: boolean): void;
}

/** Opens the output line with this sysfs number (already base + BCM). */
export type OpenPin = (gpio: number) => PinWriter;

const requireCjs = createRequire(import.meta.url);

/**
 * A sysfs output line through onoff, driven low from the moment it is exported.
 *
 * onoff is loaded on first use rather than imported: it loads the native epoll addon as
 * it is imported, and the agent's other commands, simulated trucks and this module's
 * tests must not depend on that addon having been built.
 *
 * The line is never unexported: an unexported line falls back to an input with the SoC's
 * default pull, which floats the buzzer transistor's base; driven low, the cab is silent
 * until the process exits, and the next start (systemd restarts in 2 s) drives it again.
 */
export function openOnoffPin(gpio: number): PinWriter {
  const { Gpio } = requireCjs('onoff') as typeof import('onoff');
  if (!Gpio.accessible) {
    throw new GpioUnavailableError(
      `GPIO is not accessible: onoff could not open /sys/class/gpio/export for writing as uid ${process.getuid?.() ?? '?'}; ` +
        "on a Raspberry Pi the agent's user must be in the gpio group (hardware/pi/install.sh puts the fleet user there)",
    );
  }
  // 'low' rather than 'out': the direction and the level are set in one write, so the buzzer never chirps at start.
  const line = new Gpio(gpio, 'low');
  return { write: (on) => line.writeSync(on ? Gpio.HIGH : Gpio.LOW) };
}
