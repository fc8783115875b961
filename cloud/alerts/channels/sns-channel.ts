import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { wireAlert, type Alert } from '../../../shared/contract/alert.js';
import { awsClientConfig, type AwsOptions } from '../../../shared/aws-client-config.js';
import type { AlertChannel } from '../alert-channel.js';

export interface SnsChannelOptions extends AwsOptions {
  topicArn: string;
}

/**
 * Publishes each alert to an SNS topic for the fleet team (e-mail, SMS, paging). On a
 * FIFO topic the alert id is the deduplication id, so SNS itself drops a repeat; on a
 * standard topic a crash-interrupted delivery is not resent (at most once).
 */
export class SnsChannel implements AlertChannel {
  readonly name = 'sns';
  readonly cab = false;
  readonly acknowledges = false;
  readonly idempotent: boolean;
  private readonly client: SNSClient;

  constructor(private readonly opts: SnsChannelOptions) {
    this.client = new SNSClient(awsClientConfig(opts));
    this.idempotent = opts.topicArn.endsWith('.fifo');
  }

  /** Nothing to open: each send is its own request. */
  start(): void {}

  async send(alert: Alert): Promise<void> {
    await this.client.send(
      new PublishCommand({
        TopicArn: this.opts.topicArn,
        Subject: `[${alert.severity}] ${alert.vehicle} ${alert.rule}${alert.live ? '' : ' (historical)'}`.slice(0, 100),
        Message: JSON.stringify(wireAlert(alert)),
        MessageAttributes: {
          severity: { DataType: 'String', StringValue: alert.severity },
          vehicle: { DataType: 'String', StringValue: alert.vehicle },
          live: { DataType: 'String', StringValue: String(alert.live) },
        },
        ...(this.idempotent ? { MessageGroupId: alert.vehicle, MessageDeduplicationId: alert.id } : {}),
      }),
    );
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
