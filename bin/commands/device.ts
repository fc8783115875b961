import { join } from 'node:path';
import { Command } from 'commander';
import { DeviceCredentials } from '../../gateway/device-credentials.js';
import { ConfigError } from '../../shared/config.js';
import { VEHICLE_ID } from '../../shared/contract/reading.js';
import { runCommand } from '../cli-support.js';

/** Vehicle secrets for the gateway's password mode; certificates for mtls come from scripts/pki.sh. */
export function deviceCommand(): Command {
  const file = (opts: { credentialsFile?: string; dataDir: string }) => opts.credentialsFile ?? join(opts.dataDir, 'devices.json');
  const withFile = (cmd: Command) =>
    cmd
      .option('--credentials-file <file>', 'the gateway\'s credentials file (default DATA_DIR/devices.json)')
      .option('--data-dir <dir>', 'the gateway\'s data directory', 'var/gateway');
  const checked = (vehicle: string) => {
    if (!VEHICLE_ID.test(vehicle)) throw new ConfigError(`vehicle: must be 1-64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(vehicle)}`);
    return vehicle;
  };
  const cmd = new Command('device').description('enroll and revoke vehicles for the gateway\'s password mode (a running gateway picks changes up within a second)');
  cmd.addCommand(
    withFile(new Command('add'))
      .description('create a vehicle\'s secret (or replace it) and print it once: give it to the agent as its MQTT password')
      .argument('<vehicle>', 'vehicle id')
      .action((vehicle: string, opts: { credentialsFile?: string; dataDir: string }) =>
        runCommand(async () => {
          process.stdout.write(`${DeviceCredentials.add(file(opts), checked(vehicle))}\n`);
        }),
      ),
  );
  cmd.addCommand(
    withFile(new Command('revoke'))
      .description('revoke a vehicle: its secret is forgotten and it is refused (CONNACK 5) until added again')
      .argument('<vehicle>', 'vehicle id')
      .action((vehicle: string, opts: { credentialsFile?: string; dataDir: string }) =>
        runCommand(async () => {
          const known = DeviceCredentials.revoke(file(opts), checked(vehicle));
          process.stderr.write(known ? `revoked ${vehicle}\n` : `${vehicle} was not enrolled; it is now refused anyway\n`);
        }),
      ),
  );
  return cmd;
}
