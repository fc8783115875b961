import mqtt, { type MqttClient } from 'mqtt';
import type { Alert } from '../../../shared/contract/alert.js';
import { topics } from '../../../shared/contract/topics.js';
import type { Logger } from '../../../shared/log.js';
import { wireAlert, type AlertChannel } from '../alert-channel.js';

export interface DriverChannelOptions {
  mqttUrl: string;
  serviceToken: string;
  clientId: string;
}

/**
 * Down to the cab through the gateway (QoS 1): delivered when the gateway acknowledged
 * it, which then holds it in the vehicle's persistent session until the truck is back.
 */
export class DriverChannel implements AlertChannel {
  readonly name = 'driver';
  readonly liveOnly = true;
  readonly idempotent = true; // the agent shows each alert id once
  private readonly client: MqttClient;

  constructor(opts: DriverChannelOptions, log: Logger) {
    this.client = mqtt.connect(opts.mqttUrl, {
      clientId: opts.clientId,
      username: 'dispatcher',
      password: opts.serviceToken,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
    });
    this.client.on('error', (err) => log.warn({ err: err.message }, 'driver channel link error'));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  async send(alert: Alert): Promise<void> {
    if (!this.client.connected) throw new Error('gateway not connected');
    await this.client.publishAsync(topics.alerts(alert.vehicle), JSON.stringify(wireAlert(alert)), { qos: 1 });
  }

  async close(): Promise<void> {
    // Forced: an unacknowledged alert stays undelivered in the ledger and is sent again.
    await this.client.endAsync(true);
  }
}
