import { wireAlert, type Alert } from '../../../shared/contract/alert.js';
import type { AlertChannel } from '../alert-channel.js';

export interface WebhookChannelOptions {
  url: string;
  timeoutMs: number;
  /** Sent as `Authorization: Bearer …` when set. */
  token?: string;
}

/**
 * POSTs each alert as JSON. `Idempotency-Key: <alert id>` lets the receiver drop a
 * repeat after a crash; any answer but 2xx counts as not delivered and is retried.
 */
export class WebhookChannel implements AlertChannel {
  readonly name = 'webhook';
  readonly cab = false;
  readonly acknowledges = false;
  readonly idempotent = true;

  constructor(private readonly opts: WebhookChannelOptions) {}

  /** Nothing to open: each send is its own request. */
  start(): void {}

  async send(alert: Alert): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': alert.id };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    const res = await fetch(this.opts.url, {
      method: 'POST',
      headers,
      body: JSON.stringify(wireAlert(alert)),
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`webhook answered ${res.status} ${res.statusText}`);
  }

  async close(): Promise<void> {}
}
