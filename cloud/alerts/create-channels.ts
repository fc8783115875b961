import { z } from 'zod';
import { int } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import { awsSettings, gatewayUrls } from '../../shared/settings.js';
import { serviceTokenSetting } from '../../shared/service-token.js';
import { requireServiceSecret } from '../dev-secrets.js';
import type { AlertChannel } from './alert-channel.js';
import { DriverChannel } from './channels/driver-channel.js';
import { SnsChannel } from './channels/sns-channel.js';
import { WebhookChannel } from './channels/webhook-channel.js';

/** Settings of the alert channels, shared by every command that dispatches alerts. */
export const channelSettings = {
  mqttUrl: gatewayUrls.describe('gateway URL, for driver alerts, or several comma-separated to fail over between'),
  serviceToken: serviceTokenSetting,
  webhookUrl: z.string().url().optional().describe('also POST every alert here as JSON, with an Idempotency-Key header'),
  webhookToken: z.string().optional().meta({ description: 'bearer token for the webhook', secret: true }),
  webhookTimeoutMs: int().min(100).default(5000).describe('a webhook request not answered by then counts as failed and is tried again'),
  snsTopicArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:sns:/, 'must be an SNS topic ARN')
    .optional()
    .describe('also publish every alert to this SNS topic (.fifo: deduplicated by alert id)'),
  ...awsSettings,
};

export type ChannelSettings = z.infer<z.ZodObject<typeof channelSettings>>;

/** The driver's cab always; a webhook and an SNS topic when configured. */
export function createChannels(c: ChannelSettings, clientId: string, log: Logger): AlertChannel[] {
  requireServiceSecret(c.mqttUrl, c.serviceToken);
  const channels: AlertChannel[] = [new DriverChannel({ mqttUrl: c.mqttUrl, serviceToken: c.serviceToken, clientId }, log)];
  if (c.webhookUrl) channels.push(new WebhookChannel({ url: c.webhookUrl, token: c.webhookToken, timeoutMs: c.webhookTimeoutMs }));
  if (c.snsTopicArn) channels.push(new SnsChannel({ topicArn: c.snsTopicArn, region: c.awsRegion, endpoint: c.awsEndpoint }));
  return channels;
}
