/**
 * `node fetch-json.js URL [HEADERS_JSON]`: GETs URL and prints `{"status", "body"}` with the
 * body parsed as JSON; exits 1 with the reason on stderr when there is no answer within
 * 10 s. A network host runs it (test/support/hosts.ts fetchJson) to reach services on the
 * other hosts, which this machine's own namespace has no route to.
 */
const [url, headers = '{}'] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: fetch-json.js URL [HEADERS_JSON]\n');
  process.exit(2);
}
try {
  const res = await fetch(url, { headers: JSON.parse(headers) as Record<string, string>, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  process.stdout.write(JSON.stringify({ status: res.status, body: text === '' ? null : (JSON.parse(text) as unknown) }));
} catch (err) {
  const cause = (err as Error & { cause?: Error }).cause;
  process.stderr.write(`${(err as Error).message}${cause ? `: ${cause.message}` : ''}\n`);
  process.exit(1);
}
