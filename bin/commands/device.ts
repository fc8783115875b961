import { Command } from 'commander';
import { z } from 'zod';
import { DeviceCredentials } from '../../gateway/device-credentials.js';
import { credentialsPathOf, gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { ConfigError } from '../../shared/config.js';
import { VEHICLE_ID } from '../../shared/contract/reading.js';
import { flagsFrom, runCommand, withFlags } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

/** The gateway's own settings that say where its credentials file is. */
export const deviceConfigSchema = z
  .object({
    credentialsFile: gatewayConfigSchema.shape.credentialsFile.describe("the gateway's credentials file"),
    dataDir: gatewayConfigSchema.shape.dataDir,
  })
  .strict();

/** Vehicle secrets for the gateway's password mode; certificates for mtls come from scripts/pki.sh. */
export function deviceCommand(): Command {
  const credentialsPath = (flags: Record<string, unknown>) => credentialsPathOf(flagsFrom(deviceConfigSchema, flags));
  const checked = (vehicle: string) => {
    if (!VEHICLE_ID.test(vehicle))
      throw new ConfigError(`vehicle: must be 1-64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(vehicle)}`);
    return vehicle;
  };
  const cmd = describedCommand('device');
  cmd.addCommand(
    withFlags(new Command('add'), deviceConfigSchema)
      .description(
        "create each vehicle's secret (or replace it) and print it once, one line per vehicle in the order given: give it to the agent as its MQTT password",
      )
      .argument('<vehicles...>', 'vehicle ids')
      .action((vehicles: string[], flags: Record<string, unknown>) =>
        runCommand(async () => {
          // All checked before any is enrolled: a typo in a long list enrols none.
          const path = credentialsPath(flags);
          const secrets = vehicles.map(checked).map((vehicle) => DeviceCredentials.add(path, vehicle));
          process.stdout.write(secrets.map((s) => `${s}\n`).join(''));
        }),
      ),
  );
  cmd.addCommand(
    withFlags(new Command('revoke'), deviceConfigSchema)
      .description('revoke a vehicle: its secret is forgotten and it is refused (CONNACK 5) until added again')
      .argument('<vehicle>', 'vehicle id')
      .action((vehicle: string, flags: Record<string, unknown>) =>
        runCommand(async () => {
          const known = DeviceCredentials.revoke(credentialsPath(flags), checked(vehicle));
          process.stderr.write(known ? `revoked ${vehicle}\n` : `${vehicle} was not enrolled; it is now refused anyway\n`);
        }),
      ),
  );
  return cmd;
}
