import type { DriverAlert } from '../../agent/driver-alert.js';
import { SEVERITIES, type Alert, type Severity } from '../../shared/contract/alert.js';
import type { Logger } from '../../shared/log.js';
import { CUES, QUIET, WavePlayer } from './cue.js';
import { DEFAULT_GPIO_ROOT, GpioUnavailableError, sysfsGpioNumber } from './gpio-chip.js';
import { openOnoffPin, type OpenPin } from './pin-writer.js';

export interface GpioDriverAlertOptions {
  /** BCM number of the LED's line (the `GPIO17` of the pinout, not the header's pin 11). */
  ledPin: number;
  /** BCM number of the line switching the (active) buzzer's transistor. */
  buzzerPin: number;
  /** The sysfs GPIO class directory the chip is looked up in; tests point it at a fake tree. */
  gpioRoot?: string;
  /** Opens a line by sysfs number: onoff on a Pi, a recording fake in unit tests. */
  openPin?: OpenPin;
  log?: Pick<Logger, 'warn' | 'error'>;
}

const rank = (s: Severity) => SEVERITIES.indexOf(s);

/**
 * The cab's LED and buzzer. Every active alert is remembered; the cue of the most severe
 * one plays, so clearing a critical alert while a warning is still active falls back to
 * the warning's cue, and clearing the last one silences the cab.
 */
export class GpioDriverAlert implements DriverAlert {
  private readonly active = new Map<string, Severity>();
  private readonly led: WavePlayer;
  private readonly buzzer: WavePlayer;
  private readonly log: GpioDriverAlertOptions['log'];
  private showing: Severity | undefined;
  private closed = false;

  /** Throws GpioUnavailableError off a Pi: no header controller under gpioRoot, or GPIO not writable. */
  constructor(opts: GpioDriverAlertOptions) {
    if (opts.ledPin === opts.buzzerPin) {
      throw new GpioUnavailableError(`the LED and the buzzer are both on BCM pin ${opts.ledPin}; give each its own line`);
    }
    const root = opts.gpioRoot ?? DEFAULT_GPIO_ROOT;
    const ledGpio = sysfsGpioNumber(opts.ledPin, root);
    const buzzerGpio = sysfsGpioNumber(opts.buzzerPin, root);
    const open = opts.openPin ?? openOnoffPin;
    const report = (line: string) => (err: Error) => opts.log?.error({ err: err.message, line }, 'driver alert output failed');
    this.led = new WavePlayer(open(ledGpio), report(`LED on BCM ${opts.ledPin} (gpio${ledGpio})`));
    this.buzzer = new WavePlayer(open(buzzerGpio), report(`buzzer on BCM ${opts.buzzerPin} (gpio${buzzerGpio})`));
    this.log = opts.log;
  }

  async raise(alert: Alert): Promise<void> {
    if (this.closed) return;
    this.active.set(alert.id, alert.severity);
    this.log?.warn({ alertId: alert.id, rule: alert.rule, severity: alert.severity, observed: alert.observed }, 'driver alert');
    // A new alert at the level already showing replays its cue: the driver hears that something else went wrong.
    if (alert.severity === this.top()) this.show(alert.severity);
  }

  async clear(alertId: string): Promise<void> {
    if (this.closed || !this.active.delete(alertId)) return;
    const top = this.top();
    if (top !== this.showing) this.show(top);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.active.clear();
    this.show(undefined);
    this.closed = true;
  }

  private top(): Severity | undefined {
    let top: Severity | undefined;
    for (const s of this.active.values()) if (top === undefined || rank(s) > rank(top)) top = s;
    return top;
  }

  private show(severity: Severity | undefined): void {
    this.showing = severity;
    const cue = severity === undefined ? QUIET : CUES[severity];
    this.led.play(cue.led);
    this.buzzer.play(cue.buzzer);
  }
}
