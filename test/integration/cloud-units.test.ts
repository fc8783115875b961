import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import type { z } from 'zod';
import { dispatcherConfigSchema } from '../../bin/commands/dispatcher.js';
import { archiverConfigSchema } from '../../cloud/archiver/archiver-config.js';
import { consoleConfigSchema } from '../../cloud/console-config.js';
import { detectorConfigSchema } from '../../cloud/detector-config.js';
import { gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { loadConfig } from '../../shared/config.js';
import { tempDir } from '../support/harness.js';
import { FLEET_BIN, ROOT } from '../support/paths.js';

/**
 * The cloud services' systemd unit (deploy/systemd/fleet@.service, one instance per service)
 * and the config files docs/DEPLOY.md gives them (deploy/config/): each instance passes
 * `systemd-analyze verify` without a warning and keeps a low exposure; each runs a `fleet`
 * command that exists, with a config file its schema accepts.
 */
const UNIT = join(ROOT, 'deploy', 'systemd', 'fleet@.service');
const CONFIGS = join(ROOT, 'deploy', 'config');
const FLEET_NODE = '/usr/local/lib/nodejs/fleet/bin/node';
const SERVICES: Record<string, z.ZodObject> = {
  gateway: gatewayConfigSchema,
  detector: detectorConfigSchema,
  dispatcher: dispatcherConfigSchema,
  archiver: archiverConfigSchema,
  console: consoleConfigSchema,
};
/** What the services would find in /etc/fleet/<service>.env (the sample configs listen beyond loopback). */
const SECRETS = { FLEET_SERVICE_TOKEN: 'a-service-token-of-the-deployment', FLEET_CONSOLE_TOKEN: 'a-console-token-of-the-deployment' };

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
const explain = (r: SpawnSyncReturns<string>) => `exit ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const unitText = readFileSync(UNIT, 'utf8');
const settings = (key: string) =>
  unitText
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

describe('fleet@.service', () => {
  const dir = tempDir('fleet-units-');

  /** The unit as the instance fleet@<service>.service, its Node.js the one running this test (verify checks the binary exists). */
  const instance = (service: string) => {
    const path = join(dir, service, `fleet@${service}.service`);
    mkdirSync(join(dir, service));
    writeFileSync(path, unitText.replace(`ExecStart=${FLEET_NODE} `, `ExecStart=${process.execPath} `));
    return path;
  };

  for (const service of Object.keys(SERVICES)) {
    it(`passes systemd-analyze verify with no warning as fleet@${service}`, () => {
      const r = run('systemd-analyze', ['verify', instance(service)]);
      assert.equal(r.status, 0, explain(r));
      assert.equal(r.stderr.trim(), '', 'an unknown key or a bad value is only a warning to systemd: none allowed');
    });
  }

  it('keeps its systemd-analyze security exposure at 2.0 or below', () => {
    const r = run('systemd-analyze', ['security', '--offline=true', '--threshold=20', join(dir, 'gateway', 'fleet@gateway.service')]);
    assert.equal(r.status, 0, explain(r));
  });

  it('runs `fleet <service> --config /etc/fleet/<service>.json` as the fleet user, restarted, with its secrets from a file', () => {
    const want: Record<string, string> = {
      Type: 'exec',
      ExecStart: `${FLEET_NODE} /opt/fleet/dist/bin/fleet.js %i --config /etc/fleet/%i.json`,
      EnvironmentFile: '/etc/fleet/%i.env',
      Restart: 'always',
      User: 'fleet',
      StateDirectory: 'fleet',
      ReadWritePaths: '/var/lib/fleet',
      ProtectSystem: 'strict',
      WantedBy: 'multi-user.target',
    };
    for (const [key, value] of Object.entries(want)) assert.deepEqual(settings(key), [value], key);
  });

  it('has its user declared for systemd-sysusers: fleet, with no login', () => {
    const root = join(dir, 'sysroot');
    mkdirSync(join(root, 'etc'), { recursive: true });
    const r = run('systemd-sysusers', ['--root', root, join(ROOT, 'deploy', 'systemd', 'fleet.sysusers')]);
    assert.equal(r.status, 0, explain(r));
    const entry = readFileSync(join(root, 'etc', 'passwd'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('fleet:'));
    assert.match(entry ?? '', /^fleet:x:\d+:\d+:Fleet telemetry services:\/var\/lib\/fleet:\/usr\/sbin\/nologin$/);
  });

  for (const [service, schema] of Object.entries(SERVICES)) {
    it(`gives fleet ${service} a command that exists and a config file it accepts`, () => {
      const help = run(process.execPath, [FLEET_BIN, service, '--help']);
      assert.equal(help.status, 0, explain(help));
      assert.match(help.stdout, /--config <file>/);
      const config = loadConfig(schema, { file: join(CONFIGS, `${service}.json`), env: SECRETS }) as {
        dataDir?: string;
        store?: string;
      };
      // Everything it writes is under the unit's one writable directory.
      for (const path of [config.dataDir, config.store]) if (path !== undefined) assert.match(path, /^\/var\/lib\/fleet\//, service);
    });
  }
});
