import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { Agent } from '../agent/agent.js';
import { agentOptions, type AgentConfig } from '../agent/agent-config.js';
import { SimulatedDriverAlert, type DriverAlert } from '../agent/driver-alert.js';
import { GpioDriverAlert } from './gpio/gpio-driver-alert.js';
import type { Sensor } from '../agent/sensor.js';
import type { Logger } from '../shared/log.js';
import { GpsSensor } from './gps/gps-sensor.js';
import { ObdSensor } from './obd/obd-sensor.js';
import { Ds18b20Sensor } from './onewire/ds18b20-sensor.js';

/**
 * The devices an agent config names, each behind the same Sensor interface as the simulator.
 * GPS UTC goes to `onGpsTime`: on a truck it is often the first trustworthy clock there is, and
 * its answer (why it refuses that time, if it does) decides whether GPS samples may carry it.
 * The OBD adapter's line speed is remembered next to the buffer, so a restart finds it at once.
 */
export function hardwareSensors(c: AgentConfig, onGpsTime: (utcMs: number) => string | undefined, log?: Logger): Sensor[] {
  const sensors: Sensor[] = [];
  if (c.gpsPath) sensors.push(new GpsSensor({ path: c.gpsPath, baudRate: c.gpsBaudRate, onTime: onGpsTime }));
  if (c.obdPath) {
    const stateFile = join(c.dataDir, `${c.vehicle}.obd.json`);
    sensors.push(new ObdSensor({ path: c.obdPath, baudRate: c.obdBaudRate, pollMs: c.obdPollMs, stateFile, log }));
  }
  if (c.oneWire) {
    const ids = c.oneWireIds.length > 0 ? c.oneWireIds : undefined;
    sensors.push(new Ds18b20Sensor({ root: c.oneWireRoot, ids, intervalMs: c.oneWireIntervalMs }));
  }
  return sensors;
}

/** An agent reading real devices; the cab gets an LED and a buzzer when their pins are configured, else a log line. */
export function createHardwareAgent(c: AgentConfig, log: Logger, registry?: Registry): Agent {
  const driver: DriverAlert =
    c.ledPin !== undefined && c.buzzerPin !== undefined
      ? new GpioDriverAlert({ ledPin: c.ledPin, buzzerPin: c.buzzerPin, log })
      : new SimulatedDriverAlert((msg, alert) =>
          log.warn({ alertId: alert.id, rule: alert.rule, severity: alert.severity, observed: alert.observed }, msg),
        );
  // The sensors exist before the agent that owns the clock; GPS only speaks once started, by which time it does.
  const agent: Agent = new Agent(
    agentOptions(c),
    hardwareSensors(c, (utc) => agent.clock.gpsTime(utc), log),
    driver,
    log,
    registry,
  );
  return agent;
}
