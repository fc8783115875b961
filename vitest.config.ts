import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

const MINUTE = 60_000;

/**
 * A tier that runs its files one at a time: they start brokers, gateways, browsers and
 * emulators, or measure how long something takes, and must not share the two cores with
 * each other. Each tier gets its own turn (groupOrder) after the parallel unit tests.
 */
function serialTier(name: string, groupOrder: number, minutes: number): TestProjectInlineConfiguration {
  return {
    extends: true,
    test: {
      name,
      include: [`test/${name}/**/*.test.ts`],
      fileParallelism: false,
      testTimeout: minutes * MINUTE,
      hookTimeout: minutes * MINUTE,
      sequence: { groupOrder },
    },
  };
}

export default defineConfig({
  test: {
    // Processes, so a test that exits, signals or loads a native module cannot disturb another.
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      serialTier('integration', 1, 5),
      serialTier('hil', 2, 5),
      serialTier('e2e', 3, 10),
      serialTier('chaos', 4, 15),
      serialTier('fuzz', 5, 10),
      // The Raspberry Pi image under QEMU (TCG): minutes per boot, so alone and last.
      serialTier('device', 6, 15),
    ],
    coverage: {
      provider: 'v8',
      include: ['shared/**/*.ts', 'agent/**/*.ts', 'gateway/**/*.ts', 'cloud/**/*.ts', 'hardware/**/*.ts', 'simulators/**/*.ts'],
      reporter: ['text-summary', 'text'],
      // The modules a reading's safety rests on: the contract, the rules, the agent's buffer,
      // publisher and link, the gateway's access, authentication and revocation decisions.
      thresholds: {
        'shared/contract/**/*.ts': { lines: 95, branches: 90 },
        'shared/rules/**/*.ts': { lines: 95, branches: 85 },
        'agent/buffer.ts': { lines: 95, branches: 90 },
        'agent/publisher.ts': { lines: 95, branches: 85 },
        'agent/link.ts': { lines: 95, branches: 80 },
        'gateway/access.ts': { lines: 100, branches: 95 },
        'gateway/authenticator.ts': { lines: 95, branches: 90 },
        'gateway/crl.ts': { lines: 95, branches: 95 },
      },
    },
  },
});
