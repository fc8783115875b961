/**
 * Gateway URLs as the settings name them: one, or several comma-separated that an agent fails
 * over between (agent/gateway-list.ts), and so do the services (see mqttServers).
 */

/** One gateway an agent may connect to, as its URL names it. */
export interface GatewayAddress {
  /** The URL as configured, for logs, health and the status document. */
  url: string;
  secure: boolean;
  /** Without the brackets of an IPv6 literal, as sockets take it. */
  host: string;
  port: number;
}

const DEFAULT_PORTS = { 'mqtt:': 1883, 'mqtts:': 8883 } as const;

/**
 * The `mqttUrl` setting: one gateway URL or several, comma-separated. What is wrong with it
 * in words, or undefined; the setting's schema reports it.
 */
export function gatewayUrlsProblem(setting: string): string | undefined {
  const urls = splitUrls(setting);
  if (urls.length === 0) return 'needs at least one gateway URL';
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return `${url} is not a URL`;
    }
    if (!(parsed.protocol in DEFAULT_PORTS)) return `${url}: a gateway URL starts with mqtt:// or mqtts://`;
    if (parsed.username || parsed.password) return `${url}: give the credentials as username and password, not in the URL`;
  }
  if (new Set(urls).size !== urls.length) return 'names a gateway twice';
  return undefined;
}

/** The gateways a setting the schema accepted names, in its order. */
export function gatewayAddresses(setting: string): GatewayAddress[] {
  return splitUrls(setting).map((url) => {
    const u = new URL(url);
    const protocol = u.protocol as keyof typeof DEFAULT_PORTS;
    return {
      url,
      secure: protocol === 'mqtts:',
      host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port ? Number(u.port) : DEFAULT_PORTS[protocol],
    };
  });
}

/**
 * mqtt.js options for a service (the dispatcher, a console) that talks to whichever gateway of
 * the list answers: mqtt.js tries the next one at each reconnect. A service needs no
 * stickiness, since the gateways share statuses, alerts and acknowledgements.
 */
export function mqttServers(setting: string): {
  protocol: 'mqtt' | 'mqtts';
  servers: { host: string; port: number; protocol: 'mqtt' | 'mqtts' }[];
} {
  const servers = gatewayAddresses(setting).map((a) => ({
    host: a.host,
    port: a.port,
    protocol: a.secure ? ('mqtts' as const) : ('mqtt' as const),
  }));
  return { protocol: servers[0]!.protocol, servers };
}

const splitUrls = (setting: string) =>
  setting
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
