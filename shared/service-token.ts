import { z } from 'zod';

/**
 * The service token used when none is configured: the password of the cloud services
 * (`dispatcher`, `console`) at the gateway. It is public (it is in this repository), so
 * whoever reaches the gateway with it can send alerts to any cab: the gateway accepts it only
 * while every listener is on loopback, and the services send it only to a gateway on loopback.
 */
export const DEV_SERVICE_TOKEN = 'fleet-dev-service-token';

/** The password of the gateway's service users, which the cloud parts connect with. */
export const serviceTokenSetting = z
  .string()
  .min(8)
  .default(DEV_SERVICE_TOKEN)
  .meta({ description: 'gateway service password', defaultText: 'the development token, loopback only', secret: true });
