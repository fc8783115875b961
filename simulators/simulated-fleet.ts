import type { Registry } from 'prom-client';
import { z } from 'zod';
import { agentConfigSchema, type AgentConfig } from '../agent/agent-config.js';
import { ConfigError } from '../shared/config.js';
import { VEHICLE_ID } from '../shared/contract/reading.js';
import type { Logger } from '../shared/log.js';
import { createSimulatedTruck, type SimulatedTruck } from './simulated-agent.js';

export interface SimulatedFleetOptions {
  count: number;
  prefix: string;
  mqttUrl: string;
  dataDir: string;
  simHz?: number;
  /** Which truck (1-based) overheats, and when (seconds after start). */
  overheat?: { truck: number; atS: number };
  /** Each truck's MQTT password, by vehicle id, for a gateway in password mode; every truck needs one. */
  secrets?: Record<string, string>;
  /** Extra agent settings (reconnect timing, batch size ...). */
  agent?: Record<string, unknown>;
}

/** A secrets file: `{"truck-001": "<secret from fleet device add>", …}`. */
export const truckSecretsSchema = z.record(z.string().regex(VEHICLE_ID, 'must be a vehicle id'), z.string().min(1));

/** The agent settings of each simulated truck: `prefix` numbered from 1, zero-padded to the count's width. */
export function simulatedTruckConfigs(opts: SimulatedFleetOptions): AgentConfig[] {
  const width = String(opts.count).length < 2 ? 2 : String(opts.count).length;
  return Array.from({ length: opts.count }, (_, n) => {
    const i = n + 1;
    const vehicle = `${opts.prefix}${String(i).padStart(width, '0')}`;
    const password = opts.secrets?.[vehicle];
    if (opts.secrets && password === undefined) throw new ConfigError(`secrets: no secret for ${vehicle}`);
    return agentConfigSchema.parse({
      ...opts.agent,
      vehicle,
      password,
      mqttUrl: opts.mqttUrl,
      dataDir: opts.dataDir,
      simSeed: i,
      simHz: opts.simHz,
      opsPort: -1,
      // The demo and the tests follow alerts along the cloud path; edge rules would get there first.
      edgeRules: false,
      faults: opts.overheat?.truck === i ? [{ kind: 'engine_overheat', fromS: opts.overheat.atS }] : [],
    });
  });
}

/** Many real agents in one process, each with its own buffer file and MQTT session. */
export class SimulatedFleet {
  readonly trucks: SimulatedTruck[] = [];

  constructor(opts: SimulatedFleetOptions, log: Logger, registry?: Registry) {
    for (const config of simulatedTruckConfigs(opts)) {
      this.trucks.push(createSimulatedTruck(config, log.child({ vehicle: config.vehicle }), registry));
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.trucks.map((t) => t.agent.start()));
  }

  /** Stops sampling and waits (bounded) until every truck's buffer reached the gateway. */
  async drain(timeoutMs: number): Promise<boolean> {
    await Promise.all(this.trucks.map((t) => t.agent.stopSensors()));
    const done = await Promise.all(this.trucks.map((t) => t.agent.drained(timeoutMs)));
    return done.every(Boolean);
  }

  readingsProduced(): number {
    return this.trucks.reduce((n, t) => n + t.agent.buffer.stats().nextSeq - 1, 0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.trucks.map((t) => t.agent.stop()));
  }
}
