import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { freePort, getJson, kill, portOpen, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { queryFile, queryValue } from '../support/sqlite.js';

const VEHICLE = 'failover-1';

/** One `fleet gateway` process of two, both appending to the same embedded stream file. */
class GatewayProcess {
  proc?: Proc;
  port = 0;

  constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly streamPath: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const args = ['gateway', '--port', String(this.port), '--data-dir', join(this.dir, this.name), '--stream-path', this.streamPath];
    this.proc = runFleet([...args, '--ops-port', '-1']);
    await waitFor(`${this.name} listening`, () => portOpen(this.port), 30_000, 100);
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc) await kill(this.proc, signal);
  }
}

/**
 * An agent given two gateways, each a real process, while it sends readings as fast as a
 * truck does: the gateway it is on is killed, then the other stops answering (SIGSTOP: the
 * TCP connection stays open, nothing is acknowledged). Every reading reaches the stream,
 * in order.
 */
describe('an agent failing over between two gateways', () => {
  const dir = tempDir('fleet-failover-');
  const streamPath = join(dir, 'stream.db');
  const gateways = [new GatewayProcess('gw-a', dir, streamPath), new GatewayProcess('gw-b', dir, streamPath)] as const;
  const dataDir = join(dir, 'agent');
  let agent: Proc | undefined;
  let opsPort = 0;

  beforeAll(async () => {
    for (const g of gateways) await g.start();
    opsPort = await freePort();
  });

  afterAll(async () => {
    if (agent) await kill(agent, 'SIGKILL');
    for (const g of gateways) {
      if (g.proc) g.proc.child.kill('SIGCONT');
      await g.stop();
    }
  });

  /** The seqs of the vehicle's readings in the stream, in stream order (repeats included). */
  const streamSeqs = (): number[] =>
    queryFile<{ payload: Buffer; received_at: number }>(
      streamPath,
      'SELECT payload, received_at FROM telemetry WHERE vehicle = ? ORDER BY offset',
      VEHICLE,
    ).flatMap((row) => decodeStreamRecord(row.payload, { key: VEHICLE, receivedAt: row.received_at }).batch.readings.map((r) => r.seq));

  /** The gateway the agent says it is connected through, once it is. */
  const via = async (): Promise<string | undefined> => {
    try {
      const { body } = await getJson<{ connected: boolean; gateway: string | null }>(`http://127.0.0.1:${opsPort}/healthz`);
      return body.connected && body.gateway ? body.gateway : undefined;
    } catch {
      return undefined; // not listening yet
    }
  };

  const gatewayAt = (url: string) => gateways.find((g) => g.url === url)!;

  it('loses and reorders nothing when its gateway is killed, or stops acknowledging, under load', async () => {
    agent = runFleet([
      'agent',
      '--vehicle',
      VEHICLE,
      '--mqtt-url',
      gateways.map((g) => g.url).join(','),
      '--data-dir',
      dataDir,
      '--sim-hz',
      '20',
      '--batch-max-readings',
      '20',
      '--keepalive-s',
      '5',
      '--reconnect-base-ms',
      '100',
      '--reconnect-max-ms',
      '1000',
      '--ops-port',
      String(opsPort),
    ]);
    const first = gatewayAt(await waitFor('the agent connected', via, 30_000, 100));
    await waitFor('readings flowing', () => streamSeqs().length >= 200, 30_000, 100);

    // Killed: the connection is refused from then on.
    await first.stop('SIGKILL');
    const second = gatewayAt(
      await waitFor('the agent on the other gateway', async () => ((await via()) === first.url ? undefined : via()), 30_000, 100),
    );
    assert.notEqual(second, first);
    let flowing = streamSeqs().length + 200;
    await waitFor('readings flowing through the second gateway', () => streamSeqs().length >= flowing, 30_000, 100);
    await first.start();

    // Stopped: connected, silent. The keepalive finds it out and the agent moves back.
    second.proc!.child.kill('SIGSTOP');
    await waitFor('the agent back on the first gateway', async () => ((await via()) === first.url ? true : undefined), 60_000, 200);
    flowing = streamSeqs().length + 200;
    await waitFor('readings flowing through the first gateway again', () => streamSeqs().length >= flowing, 30_000, 100);
    second.proc!.child.kill('SIGCONT');

    // A deliberate stop drains what is buffered.
    await kill(agent, 'SIGTERM');
    agent = undefined;
    const bufferPath = join(dataDir, `${VEHICLE}.buffer.db`);
    const produced = Number(queryValue<number>(bufferPath, "SELECT value FROM meta WHERE key = 'next_seq'")) - 1;
    assert.equal(queryValue<number>(bufferPath, 'SELECT count(*) FROM readings'), 0, 'the buffer drained');

    const seqs = streamSeqs();
    const firstSeen: number[] = [];
    const seen = new Set<number>();
    for (const s of seqs) {
      if (!seen.has(s)) firstSeen.push(s);
      seen.add(s);
    }
    assert.deepEqual(
      firstSeen,
      Array.from({ length: produced }, (_, i) => i + 1),
      'every reading in the stream, each first seen in seq order (repeats are dropped by (vehicle, seq))',
    );
  });
});
