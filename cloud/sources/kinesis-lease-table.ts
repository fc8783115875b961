import { setTimeout as delay } from 'node:timers/promises';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  PutItemCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { awsClientConfig, type AwsOptions } from '../../shared/aws-client-config.js';

/** The checkpoint of a shard read to its end and fully handled: its children may be read. */
export const SHARD_END = 'SHARD_END';

/**
 * One shard's lease, as the Kinesis Client Library keeps it: the owner, a counter the owner
 * bumps to say it is alive, and the checkpoint. `checkpoint` is a sequence number, SHARD_END,
 * or undefined (read from the start).
 */
export interface Lease {
  shardId: string;
  parents: string[];
  owner?: string;
  counter: number;
  checkpoint?: string;
  /** The arrival time of the checkpointed record: where a new owner rebuilds its windows from. */
  checkpointArrivedAt?: number;
}

/** The lease operations a coordinator needs: DynamoDB here, an in-memory table in unit tests. */
export interface LeaseStore {
  list(): Promise<Lease[]>;
  /** Creates the lease of a new shard, unowned; false when it exists already. */
  create(shardId: string, parents: string[]): Promise<boolean>;
  /** Bumps the counter if `owner` still holds the lease at `counter`: the new lease, or undefined when lost. */
  renew(lease: Lease, owner: string): Promise<Lease | undefined>;
  /** Makes `owner` the holder if the counter has not moved since `lease` was read: the new lease, or undefined. */
  take(lease: Lease, owner: string): Promise<Lease | undefined>;
  /** Moves the checkpoint if `owner` still holds the lease: false when it does not. */
  checkpoint(shardId: string, owner: string, sequence: string, arrivedAt: number): Promise<boolean>;
  /** Gives the lease up (on shutdown), so another worker takes it without waiting out the lease time. */
  release(lease: Lease, owner: string): Promise<void>;
}

export interface LeaseTableOptions extends AwsOptions {
  tableName: string;
}

const TABLE_ACTIVE_TIMEOUT_MS = 60_000;

/**
 * The shard leases of one stream's readers in a DynamoDB table, one item per shard keyed by
 * `leaseKey` (the shard id), with the KCL's attribute names. Every change is a conditional
 * write on the owner or the counter, so two workers never both believe a write of theirs won.
 */
export class DynamoLeaseTable implements LeaseStore {
  private readonly client: DynamoDBClient;
  readonly tableName: string;

  constructor(opts: LeaseTableOptions) {
    this.client = new DynamoDBClient(awsClientConfig(opts));
    this.tableName = opts.tableName;
  }

  /** Creates the table on first use (on demand capacity) and waits until it is active. */
  async ensureTable(): Promise<void> {
    try {
      await this.client.send(
        new CreateTableCommand({
          TableName: this.tableName,
          KeySchema: [{ AttributeName: 'leaseKey', KeyType: 'HASH' }],
          AttributeDefinitions: [{ AttributeName: 'leaseKey', AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (err) {
      // Another worker created it first.
      if (!(err instanceof ResourceInUseException)) throw err;
    }
    const deadline = Date.now() + TABLE_ACTIVE_TIMEOUT_MS;
    for (;;) {
      try {
        const out = await this.client.send(new DescribeTableCommand({ TableName: this.tableName }));
        if (out.Table?.TableStatus === 'ACTIVE') return;
      } catch (err) {
        if (!(err instanceof ResourceNotFoundException)) throw err;
      }
      if (Date.now() > deadline) throw new Error(`lease table ${this.tableName} not active after ${TABLE_ACTIVE_TIMEOUT_MS} ms`);
      await delay(500);
    }
  }

  async list(): Promise<Lease[]> {
    const leases: Lease[] = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      const out = await this.client.send(new ScanCommand({ TableName: this.tableName, ConsistentRead: true, ExclusiveStartKey: start }));
      leases.push(...(out.Items ?? []).map(toLease));
      start = out.LastEvaluatedKey;
    } while (start);
    return leases;
  }

  async create(shardId: string, parents: string[]): Promise<boolean> {
    return this.conditional(async () => {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            leaseKey: { S: shardId },
            leaseCounter: { N: '0' },
            parentShardIds: { L: parents.map((p) => ({ S: p })) },
            ownerSwitchesSinceCheckpoint: { N: '0' },
          },
          ConditionExpression: 'attribute_not_exists(leaseKey)',
        }),
      );
      return true;
    }, false);
  }

  async renew(lease: Lease, owner: string): Promise<Lease | undefined> {
    return this.update(lease.shardId, {
      UpdateExpression: 'SET leaseCounter = leaseCounter + :one',
      ConditionExpression: 'leaseCounter = :counter AND leaseOwner = :owner',
      ExpressionAttributeValues: { ':one': { N: '1' }, ':counter': { N: String(lease.counter) }, ':owner': { S: owner } },
    });
  }

  async take(lease: Lease, owner: string): Promise<Lease | undefined> {
    return this.update(lease.shardId, {
      UpdateExpression:
        'SET leaseOwner = :owner, leaseCounter = leaseCounter + :one, ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint + :one',
      ConditionExpression: 'leaseCounter = :counter',
      ExpressionAttributeValues: { ':one': { N: '1' }, ':counter': { N: String(lease.counter) }, ':owner': { S: owner } },
    });
  }

  async checkpoint(shardId: string, owner: string, sequence: string, arrivedAt: number): Promise<boolean> {
    // Only on ownership, not the counter: a renewal in flight must not fail a checkpoint.
    const updated = await this.update(shardId, {
      UpdateExpression: 'SET #checkpoint = :sequence, checkpointArrivedAt = :arrivedAt, ownerSwitchesSinceCheckpoint = :zero',
      ConditionExpression: 'leaseOwner = :owner',
      // Spelled as a name: DynamoDB reserves many plain words.
      ExpressionAttributeNames: { '#checkpoint': 'checkpoint' },
      ExpressionAttributeValues: {
        ':sequence': { S: sequence },
        ':arrivedAt': { N: String(arrivedAt) },
        ':zero': { N: '0' },
        ':owner': { S: owner },
      },
    });
    return updated !== undefined;
  }

  async release(lease: Lease, owner: string): Promise<void> {
    await this.update(lease.shardId, {
      UpdateExpression: 'REMOVE leaseOwner SET leaseCounter = leaseCounter + :one',
      ConditionExpression: 'leaseOwner = :owner',
      ExpressionAttributeValues: { ':one': { N: '1' }, ':owner': { S: owner } },
    });
  }

  close(): void {
    this.client.destroy();
  }

  private update(
    shardId: string,
    expr: {
      UpdateExpression: string;
      ConditionExpression: string;
      ExpressionAttributeValues: Record<string, AttributeValue>;
      ExpressionAttributeNames?: Record<string, string>;
    },
  ): Promise<Lease | undefined> {
    return this.conditional(async () => {
      const out = await this.client.send(
        new UpdateItemCommand({ TableName: this.tableName, Key: { leaseKey: { S: shardId } }, ReturnValues: 'ALL_NEW', ...expr }),
      );
      return toLease(out.Attributes ?? {});
    }, undefined);
  }

  /** A failed condition is an answer (someone else holds it, or moved it), not an error. */
  private async conditional<T, F>(write: () => Promise<T>, failed: F): Promise<T | F> {
    try {
      return await write();
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return failed;
      throw err;
    }
  }
}

function toLease(item: Record<string, AttributeValue>): Lease {
  const arrivedAt = item.checkpointArrivedAt?.N;
  return {
    shardId: item.leaseKey?.S ?? '',
    parents: (item.parentShardIds?.L ?? []).flatMap((p) => (p.S === undefined ? [] : [p.S])),
    owner: item.leaseOwner?.S,
    counter: Number(item.leaseCounter?.N ?? 0),
    checkpoint: item.checkpoint?.S,
    checkpointArrivedAt: arrivedAt === undefined ? undefined : Number(arrivedAt),
  };
}
