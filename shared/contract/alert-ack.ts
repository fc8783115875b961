import { ContractError } from './errors.js';
import { show } from './validate.js';

/**
 * What a cab sends on `fleet/v1/{vehicle}/alert-acks` for every copy of an alert it
 * received, shown for the first time or not: the cloud re-sends an alert until it hears this.
 */
export interface AlertAck {
  /** The alert's id, `{vehicle}.{rule}.{episodeStart}`, of the vehicle the topic names. */
  id: string;
  /** When the cab received this copy (ms, the cab's clock): for the log, not for decisions. */
  at: number;
}

const MAX_ID_LENGTH = 256;

export function encodeAlertAck(ack: AlertAck): Buffer {
  return Buffer.from(JSON.stringify({ id: ack.id, at: ack.at }));
}

/** Validates an acknowledgement published under `vehicle`'s topic. */
export function parseAlertAck(vehicle: string, payload: Buffer): AlertAck {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new ContractError(`alert acknowledgement is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ContractError('alert acknowledgement must be a JSON object like {"id": "…", "at": ms}');
  const { id, at } = doc as { id?: unknown; at?: unknown };
  if (typeof id !== 'string' || id.length > MAX_ID_LENGTH || !id.startsWith(`${vehicle}.`) || !/^[^\p{Cc}\s]+\.\d+$/u.test(id)) {
    throw new ContractError(`ack.id: must be an alert id of ${vehicle} ({vehicle}.{rule}.{episodeStart}), got ${show(id)}`);
  }
  if (!Number.isSafeInteger(at) || (at as number) < 0) throw new ContractError(`ack.at: must be ms since epoch, got ${show(at)}`);
  return { id, at: at as number };
}

/** The acknowledgement, or what is wrong with it: for receivers that answer bad input rather than throw. */
export function readAlertAck(vehicle: string, payload: Buffer): { ack: AlertAck } | { problem: string } {
  try {
    return { ack: parseAlertAck(vehicle, payload) };
  } catch (err) {
    if (err instanceof ContractError) return { problem: err.message };
    throw err;
  }
}
