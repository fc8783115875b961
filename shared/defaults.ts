/**
 * Where the parts find each other on one machine, and where they keep their files, when
 * nothing says otherwise. Every schema and help text takes these from here, so the parts
 * cannot come to disagree about where the gateway is.
 */

/** Every listener starts on loopback: reaching further is a choice, with its own checks. */
export const LOOPBACK_HOST = '127.0.0.1';

export const MQTT_PORT = 1883;
export const GATEWAY_URL = `mqtt://${LOOPBACK_HOST}:${MQTT_PORT}`;
export const CONSOLE_PORT = 8080;

/** Each command's /healthz and /metrics port, distinct so they can all run on one machine. */
export const OPS_PORTS = { agent: 9101, gateway: 9102, detector: 9103, sim: 9104, dispatcher: 9105, archiver: 9106 } as const;

/** Relative to the working directory, as a development checkout runs them. */
export const DATA_DIRS = {
  agent: 'var/agent',
  gateway: 'var/gateway',
  cloud: 'var/cloud',
  sim: 'var/sim',
  dispatcher: 'var/dispatcher',
} as const;

/** The embedded stream, in the gateway's data directory; the detector reads the same file. */
export const STREAM_FILE = 'stream.db';
/** The operational store, in the detector's data directory; the console reads the same file. */
export const STORE_FILE = 'fleet.db';

export const AWS_REGION = 'eu-west-1';
