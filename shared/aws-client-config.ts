import { NodeHttpHandler } from '@smithy/node-http-handler';

/** Where an AWS client talks to: the real service by region, or an emulator by endpoint. */
export interface AwsOptions {
  region: string;
  /** An emulator (moto) or a VPC endpoint; unset for the service's own. */
  endpoint?: string;
  /** Unset to use the SDK's default chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
}

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  requestHandler?: NodeHttpHandler;
}

/** The config every AWS client here is built from, so they all treat an endpoint alike. */
export function awsClientConfig(opts: AwsOptions): AwsClientConfig {
  const config: AwsClientConfig = { region: opts.region };
  if (opts.endpoint) {
    config.endpoint = opts.endpoint;
    // The SDK may speak HTTP/2 to an overridden endpoint; emulators speak only HTTP/1.1.
    config.requestHandler = new NodeHttpHandler();
  }
  if (opts.accessKeyId && opts.secretAccessKey) {
    config.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
  }
  return config;
}
