import { inProcessProbe } from './kafka-broker.js';

/**
 * `node kafka-ready.js BOOTSTRAP`: exits 0 when a client can talk to the Kafka broker at
 * BOOTSTRAP, 1 when not. A network host runs it (test/support/hosts.ts) for a broker on
 * another host, which this machine's own namespace has no route to.
 */
const [bootstrap] = process.argv.slice(2);
if (!bootstrap) {
  process.stderr.write('usage: kafka-ready.js HOST:PORT\n');
  process.exit(2);
}
process.exit((await inProcessProbe(bootstrap)) ? 0 : 1);
