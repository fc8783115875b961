import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Environment that starts a process with its system clock at 1970, as on a Raspberry Pi with
 * no real-time clock, through Debian's libfaketime. CLOCK_MONOTONIC stays real, as it is on
 * the device, so the process's monotonic time line matches the test's.
 */
export function bootedWithoutRtcEnv(): NodeJS.ProcessEnv {
  const lib = readdirSync('/usr/lib')
    .map((dir) => join('/usr/lib', dir, 'faketime', 'libfaketime.so.1'))
    .find((path) => existsSync(path));
  if (!lib) throw new Error('libfaketime not found under /usr/lib/*/faketime: install the Debian package faketime (npm run setup does)');
  return { LD_PRELOAD: lib, FAKETIME: '@1970-01-01 00:00:30', DONT_FAKE_MONOTONIC: '1' };
}
