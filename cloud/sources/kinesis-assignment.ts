import type { Checkpoint } from './kinesis-checkpoints.js';

// A type, not an interface, so that it fits the health endpoint's open record.
export type AssignmentHealth = {
  ok: boolean;
  shardsHeld: number;
  /** Why not ok, and since when. */
  detail?: string;
  since?: number;
};

/** A shard as ListShards names it. */
export interface ListedShard {
  shardId: string;
  parents: string[];
}

/**
 * Which shards a Kinesis reader reads and where each stands. One detector reads every shard
 * with its checkpoints in SQLite (kinesis-local-assignment.ts); several share a stream
 * through shard leases in DynamoDB (kinesis-lease-assignment.ts).
 */
export interface ShardAssignment {
  /** Learns the stream's shards (leases are created for new ones). */
  addShards(shards: ListedShard[]): Promise<void>;
  /** The shards this reader may read now, each with its checkpoint (undefined: from the start). */
  owned(): Map<string, Checkpoint | undefined>;
  /** Whether a shard was read to its end and handled by whichever reader held it: its children may be read. */
  finished(shardId: string): boolean;
  /** Saves checkpoints; returns the shards whose checkpoint was refused because this reader no longer holds them. */
  save(checkpoints: Map<string, Checkpoint>): Promise<string[]>;
  /** Records that a shard was read to its end and every record of it handled. */
  finish(shardId: string): Promise<void>;
  /** For health: how many shards this reader holds, and whether it can keep them (the lease table answers). */
  health(): AssignmentHealth;
  close(): Promise<void>;
}
