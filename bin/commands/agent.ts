import { Command } from 'commander';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { createLogger } from '../../shared/log.js';
import { createHardwareAgent } from '../../hardware/hardware-agent.js';
import { startWatchdog } from '../../hardware/pi/watchdog.js';
import { createSimulatedTruck } from '../../simulators/simulated-agent.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';

export function agentCommand(): Command {
  const cmd = new Command('agent').description(
    'run one truck agent: sample sensors, buffer durably in SQLite, publish to the gateway over MQTT',
  );
  return withSettings(cmd, agentConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const config = configFrom(agentConfigSchema, flags);
      const log = createLogger('agent').child({ vehicle: config.vehicle });
      const agent = config.sensors === 'hardware' ? createHardwareAgent(config, log) : createSimulatedTruck(config, log).agent;
      await agent.start();
      // Under systemd (Type=notify) this says READY and pings the watchdog from the event loop.
      stopOnSignals([startWatchdog(log), agent]);
    }),
  );
}
