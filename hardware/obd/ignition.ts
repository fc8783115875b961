/**
 * Is the engine running, and is the ECU talking? An ELM327 is powered from the OBD port's
 * battery pin, so it keeps answering with the key off while the ECUs behind it fall silent.
 * Two signs tell an engine stop from a fault: every PID going quiet in the same cycle, and
 * the supply voltage (ATRV), which is the battery's at rest and the alternator's when running.
 */

/**
 * Above a resting battery's voltage, with the surface charge it keeps for a while after a stop
 * (up to ~13 V on a 12 V system, ~26 V on a 24 V one), and below a charging alternator's.
 */
const CHARGING_12V = 13.3;
const CHARGING_24V = 26.6;
/** Between the two systems: above it a vehicle is a 24 V one. */
const SYSTEM_24V = 18;

export function engineRunning(volts: number): boolean {
  return volts >= (volts > SYSTEM_24V ? CHARGING_24V : CHARGING_12V);
}

/** Poll cycles in a row in which no PID answered before the ECU counts as silent (one when the voltage says the engine is off). */
export const SILENT_CYCLES = 2;
/** While silent and the voltage says the engine is off, the ECU is asked one cycle in this many (the key may be on with the engine not yet started). */
export const OFF_PROBE_CYCLES = 5;

/** Whether the ECU is silent, since when, and when to ask it again. */
export class EcuSilence {
  /** When the ECU fell silent; undefined while it answers. */
  since: number | undefined;
  private quietCycles = 0;
  private skipped = 0;

  /**
   * A poll cycle ended. `quiet`: no PID answered, at least one said NO DATA. `engineOff`: what the
   * supply voltage says, when it was read. True when the silence begins with this cycle.
   */
  cycle(quiet: boolean, now: number, engineOff?: boolean): boolean {
    if (!quiet || this.since !== undefined) {
      if (!quiet) this.quietCycles = 0;
      return false;
    }
    this.quietCycles++;
    if (this.quietCycles < SILENT_CYCLES && engineOff !== true) return false;
    this.begin(now);
    return true;
  }

  /** The ECU did not answer the request every ECU answers (0100). */
  begin(now: number): void {
    this.since = now;
    this.skipped = 0;
  }

  /** Once a cycle while silent: whether to ask the ECU this time. */
  probeDue(engineOff: boolean | undefined): boolean {
    if (engineOff !== true || ++this.skipped >= OFF_PROBE_CYCLES) {
      this.skipped = 0;
      return true;
    }
    return false;
  }

  /** The ECU answered: how long it was silent, if it was. */
  end(now: number): number | undefined {
    const since = this.since;
    this.since = undefined;
    this.quietCycles = 0;
    return since === undefined ? undefined : now - since;
  }
}
