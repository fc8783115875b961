import type { Alert } from '../shared/contract/alert.js';
import type { Reading } from '../shared/contract/reading.js';
import type { Logger } from '../shared/log.js';
import { RuleEngine } from '../shared/rules/engine.js';
import type { RuleSet } from '../shared/rules/rule-set.js';

/**
 * The cloud detector's rules, run on the truck over its own readings as they are
 * committed: a dead zone must not silence the cab. Alert ids are the same pure function
 * as in the cloud, so an episode seen both here and there is shown to the driver once.
 */
export class EdgeRules {
  private readonly engine: RuleEngine;

  constructor(
    rules: RuleSet,
    private readonly show: (alert: Alert) => void,
    private readonly clear: (alertId: string) => void,
    private readonly log: Logger,
  ) {
    // Every local reading is current: nothing the truck sees itself is historical.
    this.engine = new RuleEngine({ ...rules, freshnessMs: Number.MAX_SAFE_INTEGER });
  }

  observe(readings: Reading[]): void {
    const now = Date.now();
    for (const r of readings) {
      for (const e of this.engine.process(r, now)) {
        if (e.kind === 'cleared') {
          this.clear(e.alertId);
          continue;
        }
        // Sensor-health rules are for the fleet team: the cab hears only of what the driver can act on.
        if (e.alert.driver === false) continue;
        this.log.warn({ alertId: e.alert.id, rule: e.alert.rule, observed: e.alert.observed }, 'edge rule raised an alert');
        this.show(e.alert);
      }
    }
  }
}
