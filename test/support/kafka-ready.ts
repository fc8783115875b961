import { inProcessProbe } from './kafka-broker.js';

/**
 * `node kafka-ready.js BOOTSTRAP [BROKERS]`: exits 0 when a client can talk to the Kafka
 * broker at BOOTSTRAP and it sees BROKERS brokers (1 unless given), 1 when not. A network
 * host runs it (test/support/hosts.ts) for a broker on another host, which this machine's
 * own namespace has no route to.
 */
const [bootstrap, brokers = '1'] = process.argv.slice(2);
if (!bootstrap) {
  process.stderr.write('usage: kafka-ready.js HOST:PORT [BROKERS]\n');
  process.exit(2);
}
process.exit((await inProcessProbe(bootstrap, Number(brokers))) ? 0 : 1);
