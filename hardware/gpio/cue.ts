import type { Severity } from '../../shared/contract/alert.js';
import type { PinWriter } from './pin-writer.js';

export interface Step {
  on: boolean;
  /** How long the level is held; 0 holds it until the next wave. */
  ms: number;
}

/** Levels held in turn; a repeating wave loops, any other holds its last level. */
export interface Wave {
  steps: readonly Step[];
  repeat: boolean;
}

/** What the LED and the buzzer do together for one severity. */
export interface Cue {
  led: Wave;
  buzzer: Wave;
}

const steady = (on: boolean): Wave => ({ steps: [{ on, ms: 0 }], repeat: false });
const blink = (onMs: number, offMs: number): Wave => ({
  steps: [
    { on: true, ms: onMs },
    { on: false, ms: offMs },
  ],
  repeat: true,
});
const beep = (ms: number): Wave => ({
  steps: [
    { on: true, ms },
    { on: false, ms: 0 },
  ],
  repeat: false,
});

/**
 * Louder the worse it is. Info is silent so a driver is not trained to ignore the buzzer;
 * a warning beeps once to draw the eye to the blinking LED; a critical alert (cargo
 * temperature out of range on a tanker) keeps pulsing the buzzer until the cloud clears it.
 */
export const CUES: Record<Severity, Cue> = {
  info: { led: steady(true), buzzer: steady(false) },
  warning: { led: blink(500, 500), buzzer: beep(150) },
  critical: { led: blink(125, 125), buzzer: blink(250, 250) },
};

export const QUIET: Cue = { led: steady(false), buzzer: steady(false) };

/**
 * Plays waves on one pin with timers. A write that fails (an I/O error on sysfs) stops
 * the wave and is reported once; it must not escape from a timer and take the agent, and
 * with it the buffer, down.
 */
export class WavePlayer {
  private timer?: NodeJS.Timeout;
  /** Lines are opened driven low; undefined after a failed write, so the next one is not skipped. */
  private level: boolean | undefined = false;

  constructor(
    private readonly pin: PinWriter,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Replaces whatever is playing, from the new wave's first step. */
  play(wave: Wave): void {
    clearTimeout(this.timer);
    this.step(wave, 0);
  }

  private step(wave: Wave, i: number): void {
    const { on, ms } = wave.steps[i]!;
    try {
      // Only changes are written: each write is a syscall on the Pi's sysfs.
      if (on !== this.level) this.pin.write(on);
      this.level = on;
    } catch (err) {
      this.level = undefined;
      this.onError(err as Error);
      return;
    }
    const next = i + 1 < wave.steps.length ? i + 1 : wave.repeat ? 0 : undefined;
    if (next !== undefined && ms > 0) this.timer = setTimeout(() => this.step(wave, next), ms);
  }
}
