import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { LeaseCoordinator } from '../../../cloud/sources/kinesis-lease-coordinator.js';
import { SHARD_END, type Lease, type LeaseStore } from '../../../cloud/sources/kinesis-lease-table.js';

const LEASE_TIME = 9_000;

/** The lease table's conditional writes in memory (the DynamoDB one is tested against moto). */
class MemoryLeaseTable implements LeaseStore {
  readonly leases = new Map<string, Lease>();

  list(): Promise<Lease[]> {
    return Promise.resolve([...this.leases.values()].map((l) => ({ ...l })));
  }
  create(shardId: string, parents: string[]): Promise<boolean> {
    if (this.leases.has(shardId)) return Promise.resolve(false);
    this.leases.set(shardId, { shardId, parents, counter: 0 });
    return Promise.resolve(true);
  }
  renew(lease: Lease, owner: string): Promise<Lease | undefined> {
    const l = this.leases.get(lease.shardId);
    if (!l || l.counter !== lease.counter || l.owner !== owner) return Promise.resolve(undefined);
    l.counter++;
    return Promise.resolve({ ...l });
  }
  take(lease: Lease, owner: string): Promise<Lease | undefined> {
    const l = this.leases.get(lease.shardId);
    if (!l || l.counter !== lease.counter) return Promise.resolve(undefined);
    Object.assign(l, { owner, counter: l.counter + 1 });
    return Promise.resolve({ ...l });
  }
  checkpoint(shardId: string, owner: string, sequence: string, arrivedAt: number): Promise<boolean> {
    const l = this.leases.get(shardId);
    if (!l || l.owner !== owner) return Promise.resolve(false);
    Object.assign(l, { checkpoint: sequence, checkpointArrivedAt: arrivedAt });
    return Promise.resolve(true);
  }
  release(lease: Lease, owner: string): Promise<void> {
    const l = this.leases.get(lease.shardId);
    if (l?.owner === owner) Object.assign(l, { owner: undefined, counter: l.counter + 1 });
    return Promise.resolve();
  }
  owners(): Record<string, string[]> {
    const by: Record<string, string[]> = {};
    for (const l of this.leases.values()) if (l.owner) (by[l.owner] ??= []).push(l.shardId);
    return by;
  }
}

function setUp(shards = 4) {
  const table = new MemoryLeaseTable();
  for (let i = 0; i < shards; i++) table.leases.set(`shard-${i}`, { shardId: `shard-${i}`, parents: [], counter: 0 });
  const clock = { now: 1_000_000 };
  const worker = (workerId: string) => new LeaseCoordinator(table, { workerId, leaseTimeMs: LEASE_TIME, now: () => clock.now });
  return { table, clock, worker };
}

const held = (w: LeaseCoordinator) => w.readable().map((l) => l.shardId);

describe('Kinesis lease coordinator', () => {
  it('takes unowned leases at once, then a second worker steals one a round until both hold half', async () => {
    const { table, clock, worker } = setUp();
    const a = worker('a');
    const b = worker('b');
    await a.round();
    assert.equal(held(a).length, 4, 'alone, a worker takes every unowned lease');
    const stolen: string[] = [];
    for (let round = 0; round < 4; round++) {
      clock.now += LEASE_TIME / 3;
      await a.round();
      stolen.push(...(await b.round()).taken);
    }
    assert.equal(stolen.length, 2, 'one lease per round, and only while a holds more than its share');
    assert.deepEqual(Object.fromEntries(Object.entries(table.owners()).map(([w, s]) => [w, s.length])), { a: 2, b: 2 });
    assert.equal(held(a).length, 2, 'a renewal that fails tells the victim it lost the lease');
    assert.deepEqual([...held(a), ...held(b)].sort(), ['shard-0', 'shard-1', 'shard-2', 'shard-3']);
  });

  it("takes a silent worker's leases only once their counters stood still for the lease time", async () => {
    const { clock, worker } = setUp();
    const a = worker('a');
    const b = worker('b');
    await a.round();
    for (let round = 0; round < 3; round++) {
      clock.now += LEASE_TIME / 3;
      await a.round();
      await b.round();
    }
    assert.equal(held(b).length, 2);
    // a stops renewing (killed or paused).
    const silentFrom = clock.now;
    while (clock.now - silentFrom < LEASE_TIME - LEASE_TIME / 3) {
      clock.now += LEASE_TIME / 3;
      await b.round();
      assert.equal(held(b).length, 2, 'not expired yet');
    }
    clock.now += LEASE_TIME / 3;
    const { taken } = await b.round();
    assert.equal(taken.length, 2);
    assert.equal(held(b).length, 4);
  });

  it('takes again a lease its earlier incarnation (same worker id, killed) left, while the other worker holds its share', async () => {
    const { clock, worker } = setUp();
    const b = worker('b');
    await b.round();
    const a1 = worker('a');
    clock.now += LEASE_TIME / 3;
    await a1.round(); // steals one: a holds 1, b 3
    assert.equal(held(a1).length, 1);
    // a is SIGKILLed and starts again under the same id; its lease still names it. The new a
    // steals one from b (which holds more than its share), so b then holds exactly its share.
    const a2 = worker('a');
    for (let round = 0; round < 9; round++) {
      clock.now += LEASE_TIME / 3;
      await b.round();
      await a2.round();
    }
    assert.deepEqual([...held(a2), ...held(b)].sort(), ['shard-0', 'shard-1', 'shard-2', 'shard-3'], 'no shard left unread');
    assert.equal(held(a2).length, 2);
  });

  it('stops reading a lease it could not renew within the lease time, and then cannot move its checkpoint', async () => {
    const { table, clock, worker } = setUp(1);
    const a = worker('a');
    const b = worker('b');
    await a.round();
    assert.ok(await a.checkpoint('shard-0', '100', 5));
    await b.round();
    // a is paused: its clock moves, its rounds do not run.
    clock.now += LEASE_TIME;
    assert.deepEqual(held(a), [], 'a paused worker stops reading before anyone may take over');
    clock.now += LEASE_TIME / 3;
    assert.deepEqual((await b.round()).taken, ['shard-0']);
    assert.ok(await b.checkpoint('shard-0', '200', 6));
    // a resumes and commits what it had read before the pause.
    assert.equal(await a.checkpoint('shard-0', '150', 7), false);
    assert.equal(table.leases.get('shard-0')?.checkpoint, '200');
    assert.deepEqual((await a.round()).lost, [], 'already dropped by the refused checkpoint');
    assert.deepEqual(held(a), []);
  });

  it('leaves finished shards out of the share, and says which are finished', async () => {
    const { table, worker } = setUp(3);
    Object.assign(table.leases.get('shard-0')!, { checkpoint: SHARD_END });
    const a = worker('a');
    await a.round();
    assert.deepEqual(held(a), ['shard-1', 'shard-2']);
    assert.ok(a.finished('shard-0'));
    assert.ok(!a.finished('shard-1'));
  });

  it('creates leases for new shards once, whichever worker sees them first', async () => {
    const { table, worker } = setUp(0);
    const a = worker('a');
    const b = worker('b');
    const shards = [{ shardId: 'shard-9', parents: ['shard-1', 'shard-2'] }];
    await a.addShards(shards);
    await b.addShards(shards);
    assert.deepEqual([...table.leases.values()], [{ shardId: 'shard-9', parents: ['shard-1', 'shard-2'], counter: 0 }]);
  });

  it('releases its leases on shutdown, so another worker takes them without waiting out the lease time', async () => {
    const { worker } = setUp(2);
    const a = worker('a');
    const b = worker('b');
    await a.round();
    await a.releaseAll();
    assert.deepEqual((await b.round()).taken.sort(), ['shard-0', 'shard-1']);
  });
});
