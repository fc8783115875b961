import { createHash } from 'node:crypto';
import type { GatewayAddress } from '../shared/gateway-urls.js';

/**
 * Which gateway to connect to. A vehicle starts on the one its id hashes to, so a fleet given
 * the same list spreads over all of them, and each truck starts where it did last time. Every
 * failed attempt and every lost link moves on to the next one, in turn: a gateway that cut the
 * link, or does not answer, is most likely down (many trucks lose it at once), and one that
 * does not answer costs a whole connect timeout to find out again; if the truck's own radio
 * was the cause, every gateway is as good as another. What rotating costs is the session kept
 * on the gateway left behind, which only holds the subscriptions (made again at once) and
 * rejection notices not yet delivered. The reconnect delay grows per round over the list, so
 * every gateway is tried at the base delay before the delay doubles.
 */
export class GatewayList {
  readonly addresses: readonly GatewayAddress[];
  private index: number;
  /** Attempts since the last connection: rounds over the list make the backoff. */
  private attempts = 0;

  constructor(addresses: readonly GatewayAddress[], vehicle: string) {
    if (addresses.length === 0) throw new Error('no gateway to connect to');
    this.addresses = addresses;
    this.index = createHash('sha256').update(vehicle).digest().readUInt32BE(0) % addresses.length;
  }

  get current(): GatewayAddress {
    return this.addresses[this.index]!;
  }

  connected(): void {
    this.attempts = 0;
  }

  /** The link was lost or an attempt failed: the next gateway, and how many full rounds have failed (the backoff's attempt). */
  moveOn(): number {
    this.index = (this.index + 1) % this.addresses.length;
    return Math.floor(this.attempts++ / this.addresses.length);
  }
}
