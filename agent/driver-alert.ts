import type { Alert, Severity } from '../shared/contract/alert.js';

/**
 * What the driver sees and hears in the cab. On a Pi this drives a buzzer and an LED
 * (hardware/); the simulated output logs and keeps state that tests can read.
 */
export interface DriverAlert {
  /** Shows the alert; called at most once per alert id. */
  raise(alert: Alert): Promise<void>;
  /** Stops the cue for an alert that was cleared. */
  clear(alertId: string): Promise<void>;
  close(): Promise<void>;
}

export interface ShownAlert {
  alert: Alert;
  shownAt: number;
}

/** The driver output without hardware: a log line per alert and a record tests can read. */
export class SimulatedDriverAlert implements DriverAlert {
  readonly shown: ShownAlert[] = [];
  readonly active = new Map<string, Severity>();

  constructor(private readonly log: (msg: string, alert: Alert) => void = () => {}) {}

  async raise(alert: Alert): Promise<void> {
    this.shown.push({ alert, shownAt: Date.now() });
    this.active.set(alert.id, alert.severity);
    this.log('driver alert', alert);
  }

  async clear(alertId: string): Promise<void> {
    this.active.delete(alertId);
  }

  async close(): Promise<void> {}
}
