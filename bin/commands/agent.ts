import { Command, Option } from 'commander';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { createLogger } from '../../shared/log.js';
import { createHardwareAgent } from '../../hardware/hardware-agent.js';
import { startWatchdog } from '../../hardware/pi/watchdog.js';
import { createSimulatedTruck } from '../../simulators/simulated-agent.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function agentCommand(): Command {
  const cmd = new Command('agent')
    .description('run one truck agent: sample sensors, buffer durably in SQLite, publish to the gateway over MQTT')
    .option('--vehicle <id>', 'vehicle id (also the MQTT client id and topic segment)')
    .option('--mqtt-url <url>', 'gateway URL (default mqtt://127.0.0.1:1883)')
    .option('--username <name>', 'MQTT username')
    .option('--password <secret>', 'MQTT password, the vehicle secret from "fleet device add" (prefer FLEET_PASSWORD)')
    .option('--tls-cert <file>', 'for an mqtts:// gateway: this vehicle\'s certificate (scripts/pki.sh enroll)')
    .option('--tls-key <file>', 'its private key')
    .option('--tls-ca <file>', 'the CA that signed the gateway\'s certificate')
    .option('--data-dir <dir>', 'where the buffer lives (default var/agent)')
    .option('--buffer-max-bytes <n>', 'buffer cap; beyond it GPS, then speed/rpm, then temperatures are evicted oldest first (default 256 MiB)')
    .option('--memory-buffer-max-readings <n>', 'while the disk refuses writes, hold at most this many samples in memory, dropping GPS first (default 50000)')
    .addOption(new Option('--synchronous <mode>', 'SQLite synchronous: FULL survives power cuts (default), NORMAL only crashes').choices(['FULL', 'NORMAL']))
    .option('--commit-interval-ms <ms>', 'group commit interval (default 50)')
    .option('--batch-max-readings <n>', 'readings per MQTT publish at most (default 500)')
    .option('--linger-ms <ms>', 'wait this long for a batch to fill (default 200)')
    .option('--max-inflight <n>', 'unacknowledged publishes at most (default 8)')
    .option('--max-publishes-per-second <n>', 'publishes per second at most, as AWS IoT Core allows 100 per connection; 0 for no limit (default 100)')
    .option('--keepalive-s <s>', 'MQTT keepalive (default 30)')
    .option('--reconnect-base-ms <ms>', 'first reconnect delay; doubles with jitter (default 500)')
    .option('--reconnect-max-ms <ms>', 'longest reconnect delay (default 30000)')
    .option('--compress', 'deflate batches on the wire')
    .addOption(new Option('--edge-rules <on>', 'evaluate the rules on the truck too, so the cab is warned with no network (default true)').choices(['true', 'false']))
    .option('--rules-file <file>', 'rules for the edge evaluation, as the detector uses (default: built-in rules)')
    .addOption(new Option('--clock <trust>', 'system: the system clock is right from boot; sync: no real-time clock, readings wait for GPS or NTP time and are corrected then (default system)').choices(['system', 'sync']))
    .option('--clock-synced-file <path>', 'exists once NTP has set the clock (default /run/systemd/timesync/synchronized)')
    .option('--clock-hold-ms <ms>', 'with --clock sync, how long readings wait for a sync before going out flagged unsynced (default 120000)')
    .option('--drain-on-stop-ms <ms>', 'on SIGTERM, keep sending the buffer this long before exiting (default 5000)')
    .addOption(new Option('--sensors <kind>', 'where readings come from: the truck model, or the devices below (default simulated)').choices(['simulated', 'hardware']))
    .option('--gps-path <device>', 'NMEA GPS receiver serial port, e.g. /dev/fleet-gps')
    .option('--gps-baud-rate <baud>', 'GPS serial speed, 8N1 (default 9600)')
    .option('--obd-path <device>', 'ELM327 OBD-II adapter serial port, e.g. /dev/fleet-obd')
    .option('--obd-baud-rate <baud>', 'ELM327 serial speed, tried after the rate that worked last and before 38400, 9600, 115200, 57600, 230400, 500000 (default 38400)')
    .option('--obd-poll-ms <ms>', 'OBD-II poll cycle: speed, coolant, rpm and load each cycle, intake, ambient, fuel and voltage in turn (default 1000)')
    .addOption(new Option('--one-wire <on>', 'read DS18B20 cargo probes on the 1-Wire bus (default false)').choices(['true', 'false']))
    .option('--one-wire-root <dir>', '1-Wire sysfs root (default /sys/bus/w1/devices)')
    .option('--one-wire-ids <list>', 'comma-separated probe ids (28-…); all on the bus by default')
    .option('--led-pin <bcm>', 'BCM number of the cab LED (with --buzzer-pin: alerts drive GPIO)')
    .option('--buzzer-pin <bcm>', 'BCM number of the cab buzzer transistor')
    .option('--one-wire-interval-ms <ms>', 'how often the probes are read, at least 1000: a conversion takes 750 ms (default 2000)')
    .option('--sim-seed <n>', 'seed of the simulated truck (default 1)')
    .option('--sim-hz <hz>', 'sample every simulated sensor at this rate')
    .option('--overheat-at <s>', 'simulated engine overheat starting this many seconds after start');
  return opsOptions(withConfig(cmd), 9101).action((flags) =>
    runCommand(async () => {
      const { overheatAt, ...rest } = flags as Record<string, unknown> & { overheatAt?: string };
      const config = configFrom(agentConfigSchema, rest);
      if (overheatAt !== undefined) config.faults.push({ kind: 'engine_overheat', fromS: Number(overheatAt) });
      const log = createLogger('agent').child({ vehicle: config.vehicle });
      const agent = config.sensors === 'hardware' ? createHardwareAgent(config, log) : createSimulatedTruck(config, log).agent;
      await agent.start();
      // Under systemd (Type=notify) this says READY and pings the watchdog from the event loop.
      stopOnSignals([startWatchdog(log), agent]);
    }),
  );
}
