import { VEHICLE_ID } from './reading.js';

/** MQTT topics, all under one versioned root so a v2 contract can live beside v1. */
export const TOPIC_ROOT = 'fleet/v1';

export const TOPIC_KINDS = ['telemetry', 'status', 'alerts', 'rejected', 'alert-acks'] as const;
export type TopicKind = (typeof TOPIC_KINDS)[number];

export const topics = {
  telemetry: (vehicle: string) => `${TOPIC_ROOT}/${vehicle}/telemetry`,
  /** Retained; the agent's Last Will sets it offline. */
  status: (vehicle: string) => `${TOPIC_ROOT}/${vehicle}/status`,
  /** Down to the cab, QoS 0: the cab acknowledges on alertAcks, the dispatcher sends again until it does. */
  alerts: (vehicle: string) => `${TOPIC_ROOT}/${vehicle}/alerts`,
  /** Down to the vehicle: the gateway's reason for each payload it dead-lettered. */
  rejected: (vehicle: string) => `${TOPIC_ROOT}/${vehicle}/rejected`,
  /** Up from the cab, QoS 1: one message for every copy of an alert it received (see alert-ack.ts). */
  alertAcks: (vehicle: string) => `${TOPIC_ROOT}/${vehicle}/alert-acks`,
  allStatus: `${TOPIC_ROOT}/+/status`,
  allAlertAcks: `${TOPIC_ROOT}/+/alert-acks`,
};

export interface ParsedTopic {
  vehicle: string;
  kind: TopicKind;
}

export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 4 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT) return undefined;
  const [, , vehicle, kind] = parts as [string, string, string, string];
  if (!VEHICLE_ID.test(vehicle)) return undefined;
  if (!(TOPIC_KINDS as readonly string[]).includes(kind)) return undefined;
  return { vehicle, kind: kind as TopicKind };
}

/** Stream names (Kafka topics, Kinesis streams, embedded tables), keyed by vehicle everywhere. */
export const STREAMS = {
  telemetry: 'fleet.telemetry',
  alerts: 'fleet.alerts',
} as const;

/** The retained status document. */
export interface VehicleStatus {
  online: boolean;
  at: number;
  agentVersion?: string;
  /** The gateway URL the agent is connected through (of those it may fail over between). */
  gateway?: string;
}
