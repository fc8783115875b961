import type { Command } from 'commander';
import { agentConfigSchema, agentOptions } from '../../agent/agent-config.js';
import { createLogger } from '../../shared/log.js';
import { startWatchdog } from '../../hardware/pi/watchdog.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export function agentCommand(): Command {
  const cmd = describedCommand('agent');
  return withSettings(cmd, agentConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const config = configFrom(agentConfigSchema, flags, agentOptions);
      const log = createLogger('agent').child({ vehicle: config.vehicle });
      // Only the sensors in use are loaded: serialport and the GPIO bindings, or the truck model.
      const agent =
        config.sensors === 'hardware'
          ? (await import('../../hardware/hardware-agent.js')).createHardwareAgent(config, log)
          : (await import('../../simulators/simulated-agent.js')).createSimulatedTruck(config, log).agent;
      await agent.start();
      // Under systemd (Type=notify) this says READY and pings the watchdog from the event loop.
      stopOnSignals([startWatchdog(log), agent]);
    }),
  );
}
