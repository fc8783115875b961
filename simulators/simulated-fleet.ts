import type { Registry } from 'prom-client';
import { agentConfigSchema } from '../agent/agent-config.js';
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
  /** Extra agent settings (reconnect timing, batch size ...). */
  agent?: Record<string, unknown>;
}

/** Many real agents in one process, each with its own buffer file and MQTT session. */
export class SimulatedFleet {
  readonly trucks: SimulatedTruck[] = [];

  constructor(opts: SimulatedFleetOptions, log: Logger, registry?: Registry) {
    const width = String(opts.count).length < 2 ? 2 : String(opts.count).length;
    for (let i = 1; i <= opts.count; i++) {
      const vehicle = `${opts.prefix}${String(i).padStart(width, '0')}`;
      const config = agentConfigSchema.parse({
        ...opts.agent,
        vehicle,
        mqttUrl: opts.mqttUrl,
        dataDir: opts.dataDir,
        simSeed: i,
        simHz: opts.simHz,
        opsPort: -1,
        // The demo and the tests follow alerts along the cloud path; edge rules would get there first.
        edgeRules: false,
        faults: opts.overheat?.truck === i ? [{ kind: 'engine_overheat', fromS: opts.overheat.atS }] : [],
      });
      this.trucks.push(createSimulatedTruck(config, log.child({ vehicle }), registry));
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
