import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListShardsCommand,
  type KinesisClient,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { backoffDelay } from './backoff.js';
import { sleep } from './sleep.js';

/**
 * A Kinesis stream's life as every writer and reader here sees it: created when missing by
 * whoever comes first, usable once ACTIVE (or UPDATING, which still takes writes and reads),
 * its shards listed page by page.
 */

/** The stream's status, or undefined when there is no such stream. */
async function streamStatus(client: KinesisClient, streamName: string): Promise<string | undefined> {
  try {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    return out.StreamDescriptionSummary?.StreamStatus;
  } catch (err) {
    if ((err as Error).name === 'ResourceNotFoundException') return undefined;
    throw err;
  }
}

/**
 * Creates the stream with `shards` shards if it is missing, then waits (backing off, for at
 * most `timeoutMs`, ended early by `signal`) until it can be used.
 */
export async function ensureStream(
  client: KinesisClient,
  streamName: string,
  opts: { shards: number; timeoutMs: number; signal?: AbortSignal },
): Promise<void> {
  if ((await streamStatus(client, streamName)) === undefined) {
    try {
      await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: opts.shards }));
    } catch (err) {
      // Another process created it first.
      if ((err as Error).name !== 'ResourceInUseException') throw err;
    }
  }
  const deadline = Date.now() + opts.timeoutMs;
  const signal = opts.signal ?? new AbortController().signal;
  for (let attempt = 0; ; attempt++) {
    const status = await streamStatus(client, streamName);
    if (status === 'ACTIVE' || status === 'UPDATING') return;
    if (signal.aborted) throw new Error(`stopped while waiting for Kinesis stream ${streamName}`);
    if (Date.now() > deadline) throw new Error(`Kinesis stream ${streamName} is ${status ?? 'missing'} after ${opts.timeoutMs} ms`);
    await sleep(backoffDelay(attempt, 100, 2_000), signal);
  }
}

/** Every shard of the stream, open and closed, over as many ListShards pages as it takes. */
export async function listShards(client: KinesisClient, streamName: string): Promise<Shard[]> {
  const listed: Shard[] = [];
  let token: string | undefined;
  do {
    // ListShards takes either the stream or a token, never both.
    const out = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamName: streamName }));
    listed.push(...(out.Shards ?? []));
    token = out.NextToken;
  } while (token);
  return listed;
}
