import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { VEHICLE_ID } from '../shared/contract/reading.js';
import { sameSecret } from '../shared/secrets.js';
import { isServiceRole, type Identity } from './access.js';
import type { DeviceCredentials } from './device-credentials.js';

/**
 * How vehicles prove who they are:
 * - `mtls`: a client certificate from the fleet's CA; the vehicle id is its CN (OU=vehicle).
 * - `password`: a per-vehicle secret checked against hashed credentials (plain TCP, for development).
 * - `open`: the client id is taken on trust; only allowed on loopback (demo, tests).
 * Services (username = role) always show the service token, or in mtls a certificate with OU=service.
 */
export const AUTH_MODES = ['open', 'password', 'mtls'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

/** MQTT 3.1.1 CONNACK codes: 2 identifier rejected, 3 server unavailable, 4 bad user name or password, 5 not authorized. */
export type ConnackCode = 2 | 3 | 4 | 5;

export type ConnectRefusal =
  | 'bad_service_token'
  | 'invalid_client_id'
  | 'unknown_device'
  | 'bad_credentials'
  | 'revoked'
  | 'no_certificate'
  | 'untrusted_certificate'
  | 'identity_mismatch'
  | 'too_many_connections';

export type AuthResult = { ok: true; identity: Identity } | { ok: false; code: ConnackCode; reason: ConnectRefusal; detail: string };

export interface ConnectAttempt {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  /** The client's socket; on the mqtts listener a TLSSocket carrying the verified certificate. */
  socket: Socket | undefined;
}

const refuse = (code: ConnackCode, reason: ConnectRefusal, detail: string): AuthResult => ({ ok: false, code, reason, detail });

export class Authenticator {
  private readonly serviceToken: Buffer;

  constructor(
    private readonly mode: AuthMode,
    serviceToken: string,
    private readonly credentials?: DeviceCredentials,
    /** Whether the fleet CA's revocation list names a certificate serial (as normalSerial gives it). */
    private readonly revoked: (serial: string) => boolean = () => false,
  ) {
    this.serviceToken = Buffer.from(serviceToken);
    if (mode === 'password' && !credentials) throw new Error('password mode needs device credentials');
  }

  check(a: ConnectAttempt): AuthResult {
    const cert = a.socket instanceof TLSSocket ? peerIdentity(a.socket, this.revoked) : undefined;
    if (isServiceRole(a.username)) {
      if (a.password && sameSecret(a.password, this.serviceToken)) return { ok: true, identity: { kind: 'service', role: a.username } };
      return refuse(4, 'bad_service_token', `service ${a.username}: wrong or missing service token`);
    }
    if (cert?.ok && cert.ou === 'service' && isServiceRole(cert.cn)) return { ok: true, identity: { kind: 'service', role: cert.cn } };
    if (!VEHICLE_ID.test(a.clientId)) return refuse(2, 'invalid_client_id', `client id ${JSON.stringify(a.clientId)} is not a vehicle id`);
    const vehicle = { ok: true as const, identity: { kind: 'vehicle' as const, vehicle: a.clientId } };
    switch (this.mode) {
      case 'open':
        return vehicle;
      case 'password': {
        if (a.username !== undefined && a.username !== a.clientId) {
          return refuse(2, 'identity_mismatch', `user name ${a.username} does not match client id ${a.clientId}`);
        }
        const check = this.credentials!.check(a.clientId, a.password?.toString('utf8'));
        if (check === 'ok') return vehicle;
        if (check === 'revoked') return refuse(5, 'revoked', `vehicle ${a.clientId} is revoked`);
        if (check === 'unknown') return refuse(4, 'unknown_device', `vehicle ${a.clientId} is not enrolled`);
        return refuse(4, 'bad_credentials', `wrong secret for vehicle ${a.clientId}`);
      }
      case 'mtls': {
        if (!cert) return refuse(5, 'no_certificate', 'vehicles connect over mqtts with a client certificate');
        if (!cert.ok) return refuse(5, cert.reason, cert.detail);
        if (cert.ou !== 'vehicle')
          return refuse(5, 'untrusted_certificate', `certificate ${cert.cn} is not a vehicle certificate (OU=${cert.ou ?? 'none'})`);
        if (cert.cn !== a.clientId) return refuse(2, 'identity_mismatch', `certificate is for ${cert.cn}, client id is ${a.clientId}`);
        return vehicle;
      }
    }
  }
}

type PeerIdentity =
  | { ok: true; cn: string; ou: string | undefined }
  | { ok: false; reason: 'no_certificate' | 'untrusted_certificate' | 'revoked'; detail: string };

/** The verified subject of a TLS client, or why there is none (the TLS layer lets it through so MQTT can say why). */
function peerIdentity(socket: TLSSocket, revoked: (serial: string) => boolean): PeerIdentity {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return { ok: false, reason: 'no_certificate', detail: 'no client certificate presented' };
  const cn = first(peer.subject?.CN) ?? '';
  const serial = normalSerial(peer.serialNumber ?? '');
  if (!socket.authorized) {
    const code = String(socket.authorizationError);
    return {
      ok: false,
      reason: 'untrusted_certificate',
      detail: `certificate ${cn} (serial ${serial}) not accepted: ${VERIFY_ERRORS[code] ?? 'it does not verify against the fleet CA'} (${code})`,
    };
  }
  if (revoked(serial)) return { ok: false, reason: 'revoked', detail: `certificate ${cn} (serial ${serial}) is revoked` };
  return { ok: true, cn, ou: first(peer.subject?.OU) };
}

/** OpenSSL's verification codes a device is most likely to meet, in words. */
const VERIFY_ERRORS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed, not issued by the fleet CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a CA other than the fleet CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is not signed by the fleet CA (another CA, perhaps of the same name)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is not issued by the fleet CA',
  UNABLE_TO_GET_ISSUER_CERT: 'it is not issued by the fleet CA',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify against the fleet CA',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: "it is not valid yet (or the gateway's clock is behind)",
  INVALID_PURPOSE: 'it is not a client certificate (extended key usage)',
};

/** Serials as revokedSerials gives them: upper-case hex without leading zeros. */
export const normalSerial = (hex: string) => hex.toUpperCase().replace(/^0+(?=.)/, '');

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
