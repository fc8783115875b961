import type { AssignmentHealth, ListedShard, ShardAssignment } from './kinesis-assignment.js';
import { KinesisCheckpoints, type Checkpoint } from './kinesis-checkpoints.js';

/**
 * One detector reads every shard, with its checkpoints in a SQLite file of its own: the
 * embedded and single-detector setup. Finished parents are known only to this reader, so
 * after a restart a parent is read again from its checkpoint to its end before its
 * children, which also rebuilds the windows its last records were in.
 */
export class LocalShardAssignment implements ShardAssignment {
  private readonly store: KinesisCheckpoints;
  private readonly checkpoints: Map<string, Checkpoint>;
  private shards: string[] = [];

  constructor(
    path: string,
    private readonly streamName: string,
  ) {
    this.store = new KinesisCheckpoints(path);
    this.checkpoints = this.store.of(streamName);
  }

  addShards(shards: ListedShard[]): Promise<void> {
    this.shards = shards.map((s) => s.shardId);
    return Promise.resolve();
  }

  owned(): Map<string, Checkpoint | undefined> {
    return new Map(this.shards.map((id) => [id, this.checkpoints.get(id)]));
  }

  finished(): boolean {
    return false;
  }

  save(checkpoints: Map<string, Checkpoint>): Promise<string[]> {
    this.store.save(this.streamName, checkpoints);
    for (const [shard, c] of checkpoints) this.checkpoints.set(shard, c);
    return Promise.resolve([]);
  }

  finish(): Promise<void> {
    return Promise.resolve();
  }

  health(): AssignmentHealth {
    return { ok: true, shardsHeld: this.shards.length };
  }

  close(): Promise<void> {
    this.store.close();
    return Promise.resolve();
  }
}
