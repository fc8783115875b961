import { createServer } from 'node:http';

/**
 * `node webhook-recorder.js HOST PORT`: a webhook receiver that answers every request 204
 * and prints its Idempotency-Key (the alert id), one per line, as it arrives. A network host
 * runs it (test/support/hosts.ts) as the fleet team's endpoint; the test reads the lines.
 */
const [host, port] = process.argv.slice(2);
if (!host || !port) {
  process.stderr.write('usage: webhook-recorder.js HOST PORT\n');
  process.exit(2);
}
createServer((req, res) => {
  req.resume();
  req.once('end', () => {
    process.stdout.write(`${String(req.headers['idempotency-key'])}\n`);
    res.writeHead(204).end();
  });
}).listen(Number(port), host, () => process.stderr.write(`listening on ${host}:${port}\n`));
