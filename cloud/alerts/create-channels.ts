import { z } from 'zod';
import { int } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import { DEV_SERVICE_TOKEN } from '../../shared/service-token.js';
import { requireServiceSecret } from '../dev-secrets.js';
import type { AlertChannel } from './alert-channel.js';
import { DriverChannel } from './channels/driver-channel.js';
import { SnsChannel } from './channels/sns-channel.js';
import { WebhookChannel } from './channels/webhook-channel.js';

/** Settings of the alert channels, shared by every command that dispatches alerts. */
export const channelSettings = {
  mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
  serviceToken: z.string().min(8).default(DEV_SERVICE_TOKEN),
  /** Every alert is POSTed here as JSON (with an Idempotency-Key), when set. */
  webhookUrl: z.string().url().optional(),
  webhookToken: z.string().optional(),
  webhookTimeoutMs: int().min(100).default(5000),
  /** Every alert is published to this SNS topic, when set (a .fifo topic deduplicates by alert id). */
  snsTopicArn: z.string().regex(/^arn:aws[a-z-]*:sns:/, 'must be an SNS topic ARN').optional(),
  awsRegion: z.string().default('eu-west-1'),
  /** An AWS endpoint override, e.g. an emulator. */
  awsEndpoint: z.string().url().optional(),
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
