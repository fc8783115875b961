import type { Registry } from 'prom-client';
import { Agent } from '../agent/agent.js';
import { agentOptions, type AgentConfig } from '../agent/agent-config.js';
import { SimulatedDriverAlert } from '../agent/driver-alert.js';
import type { SensorId } from '../shared/contract/reading.js';
import type { Logger } from '../shared/log.js';
import { DEFAULT_SAMPLE_HZ, simulatedTruckSensors } from './simulated-sensors.js';
import { TruckModel } from './truck-model.js';

/** Simulated trucks start with a warm engine, as a truck already on the road would. */
const WARM_UP_MS = 15 * 60_000;

export interface SimulatedTruck {
  agent: Agent;
  model: TruckModel;
  driver: SimulatedDriverAlert;
}

/** The configured faults, and the engine overheat `overheatAt` asks for. */
export function simulatedFaults(config: Pick<AgentConfig, 'faults' | 'overheatAt'>): AgentConfig['faults'] {
  return config.overheatAt === undefined ? config.faults : [...config.faults, { kind: 'engine_overheat', fromS: config.overheatAt }];
}

/** A real agent (buffer, link, publisher) fed by the truck model instead of hardware. */
export function createSimulatedTruck(config: AgentConfig, log: Logger, registry?: Registry): SimulatedTruck {
  const startedAt = Date.now();
  const model = new TruckModel({
    seed: config.simSeed,
    startTs: startedAt - WARM_UP_MS,
    faults: simulatedFaults(config).map((f) => ({
      kind: f.kind,
      sensor: f.sensor,
      from: startedAt + f.fromS * 1000,
      to: f.toS === undefined ? undefined : startedAt + f.toS * 1000,
    })),
  });
  const rates: Partial<Record<SensorId, number>> = {};
  if (config.simHz !== undefined) {
    for (const s of Object.keys(DEFAULT_SAMPLE_HZ) as SensorId[]) rates[s] = config.simHz;
  }
  const driver = new SimulatedDriverAlert((msg, alert) =>
    log.warn({ alertId: alert.id, rule: alert.rule, severity: alert.severity, observed: alert.observed }, msg),
  );
  const agent = new Agent(agentOptions(config), simulatedTruckSensors(model, rates), driver, log, registry);
  return { agent, model, driver };
}
