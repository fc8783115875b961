import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Socket } from 'node:net';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import { afterAll, describe, it } from 'vitest';
import { Authenticator, normalSerial, type AuthMode, type AuthResult, type ConnectAttempt } from '../../../gateway/authenticator.js';
import { DeviceCredentials } from '../../../gateway/device-credentials.js';
import { tempDir } from '../../support/harness.js';

const TOKEN = 'service-token-0123';
const path = join(tempDir('fleet-authenticator-'), 'devices.json');
const SECRET = DeviceCredentials.add(path, 'truck-1');
DeviceCredentials.add(path, 'truck-9');
DeviceCredentials.revoke(path, 'truck-9');
const credentials = new DeviceCredentials(path);
credentials.load();
afterAll(() => credentials.close());

const REVOKED_SERIAL = '0A1B2C';

/**
 * A TLS client socket as the mqtts listener hands it over: the TLS layer lets every
 * certificate through (so MQTT can say why it is refused) and records whether it verified.
 */
function tlsSocket(cert: { cn?: string; ou?: string | string[]; serial?: string } | 'none', authorizationError?: string): TLSSocket {
  const peer =
    cert === 'none'
      ? {}
      : ({
          subject: { CN: cert.cn, ...(cert.ou !== undefined ? { OU: cert.ou } : {}) },
          serialNumber: cert.serial ?? '01F0',
        } as unknown as PeerCertificate);
  return Object.assign(Object.create(TLSSocket.prototype) as TLSSocket, {
    authorized: authorizationError === undefined,
    // On the server's side Node gives OpenSSL's code itself, e.g. 'CERT_HAS_EXPIRED'.
    authorizationError: authorizationError ?? null,
    getPeerCertificate: () => peer,
  });
}

const attempt = (a: Partial<ConnectAttempt>): ConnectAttempt => ({
  clientId: 'truck-1',
  username: undefined,
  password: undefined,
  socket: undefined,
  ...a,
});
const pw = (s: string) => Buffer.from(s);
const vehicleCert = (cn = 'truck-1', serial?: string) => tlsSocket({ cn, ou: 'vehicle', serial });

const authenticators = Object.fromEntries(
  (['open', 'password', 'mtls'] as AuthMode[]).map((mode) => [
    mode,
    new Authenticator(mode, TOKEN, mode === 'password' ? credentials : undefined, (serial) => serial === normalSerial(REVOKED_SERIAL)),
  ]),
) as Record<AuthMode, Authenticator>;

/** What a result says: who was let in, or the CONNACK code, the reason and (a pattern of) the detail. */
type Expect = { vehicle: string } | { service: 'dispatcher' | 'console' } | [code: number, reason: string, detail: RegExp];

function check(result: AuthResult, expected: Expect, what: string): void {
  if (Array.isArray(expected)) {
    assert.equal(result.ok, false, `${what}: refused`);
    if (result.ok) return;
    assert.deepEqual([result.code, result.reason], expected.slice(0, 2), what);
    assert.match(result.detail, expected[2], what);
  } else if ('vehicle' in expected) {
    assert.deepEqual(result, { ok: true, identity: { kind: 'vehicle', vehicle: expected.vehicle } }, what);
  } else {
    assert.deepEqual(result, { ok: true, identity: { kind: 'service', role: expected.service } }, what);
  }
}

const ANY_MODE: AuthMode[] = ['open', 'password', 'mtls'];

const table: [string, AuthMode[], ConnectAttempt, Expect][] = [
  // Services, in every mode: the role as user name and the service token.
  [
    'dispatcher with the token',
    ANY_MODE,
    attempt({ clientId: 'd-1', username: 'dispatcher', password: pw(TOKEN) }),
    { service: 'dispatcher' },
  ],
  ['console with the token', ANY_MODE, attempt({ clientId: 'c-1', username: 'console', password: pw(TOKEN) }), { service: 'console' }],
  [
    'a service with a wrong token',
    ANY_MODE,
    attempt({ username: 'dispatcher', password: pw(`${TOKEN}x`) }),
    [4, 'bad_service_token', /^service dispatcher: wrong or missing service token$/],
  ],
  [
    'a service with a token of another length',
    ANY_MODE,
    attempt({ username: 'console', password: pw('short') }),
    [4, 'bad_service_token', /console: wrong or missing/],
  ],
  ['a service without a token', ANY_MODE, attempt({ username: 'console' }), [4, 'bad_service_token', /console: wrong or missing/]],
  [
    'a service role named with a certificate',
    ANY_MODE,
    attempt({ clientId: 'x', username: 'dispatcher', socket: tlsSocket({ cn: 'dispatcher', ou: 'service' }) }),
    [4, 'bad_service_token', /dispatcher/],
  ],
  // Services with a certificate (mtls deployments): OU=service, the role as CN.
  [
    'a service certificate',
    ANY_MODE,
    attempt({ clientId: 'console-1', socket: tlsSocket({ cn: 'console', ou: 'service' }) }),
    { service: 'console' },
  ],
  [
    'a service certificate of an unknown role',
    ['mtls'],
    attempt({ clientId: 'truck-1', socket: tlsSocket({ cn: 'admin', ou: 'service' }) }),
    [5, 'untrusted_certificate', /^certificate admin is not a vehicle certificate \(OU=service\)$/],
  ],
  [
    'a service certificate that does not verify',
    ['mtls'],
    attempt({ clientId: 'truck-1', socket: tlsSocket({ cn: 'console', ou: 'service' }, 'DEPTH_ZERO_SELF_SIGNED_CERT') }),
    [5, 'untrusted_certificate', /^certificate console \(serial 1F0\) not accepted: it is self-signed/],
  ],
  // Client ids: a vehicle's id, whatever the mode.
  ['an empty client id', ANY_MODE, attempt({ clientId: '' }), [2, 'invalid_client_id', /^client id "" is not a vehicle id$/]],
  ['a client id with a slash', ANY_MODE, attempt({ clientId: 'truck/1' }), [2, 'invalid_client_id', /"truck\/1" is not a vehicle id/]],
  ['a client id of 65 characters', ANY_MODE, attempt({ clientId: 'a'.repeat(65) }), [2, 'invalid_client_id', /is not a vehicle id/]],
  // open: the client id on trust.
  ['open: any vehicle id', ['open'], attempt({ clientId: 'truck-42' }), { vehicle: 'truck-42' }],
  [
    'open: a user name and password are ignored',
    ['open'],
    attempt({ clientId: 'truck-42', username: 'truck-1', password: pw('nothing') }),
    { vehicle: 'truck-42' },
  ],
  // password: the vehicle's own secret.
  ['password: the right secret', ['password'], attempt({ username: 'truck-1', password: pw(SECRET) }), { vehicle: 'truck-1' }],
  ['password: the right secret, no user name', ['password'], attempt({ password: pw(SECRET) }), { vehicle: 'truck-1' }],
  [
    'password: a wrong secret',
    ['password'],
    attempt({ username: 'truck-1', password: pw(`${SECRET}x`) }),
    [4, 'bad_credentials', /^wrong secret for vehicle truck-1$/],
  ],
  ['password: no secret', ['password'], attempt({ username: 'truck-1' }), [4, 'bad_credentials', /wrong secret for vehicle truck-1/]],
  [
    'password: a vehicle never enrolled',
    ['password'],
    attempt({ clientId: 'truck-2', password: pw(SECRET) }),
    [4, 'unknown_device', /^vehicle truck-2 is not enrolled$/],
  ],
  [
    'password: a revoked vehicle',
    ['password'],
    attempt({ clientId: 'truck-9', password: pw(SECRET) }),
    [5, 'revoked', /^vehicle truck-9 is revoked$/],
  ],
  [
    'password: a user name other than the client id',
    ['password'],
    attempt({ clientId: 'truck-2', username: 'truck-1', password: pw(SECRET) }),
    [2, 'identity_mismatch', /^user name truck-1 does not match client id truck-2$/],
  ],
  ['password: a certificate is no secret', ['password'], attempt({ socket: vehicleCert() }), [4, 'bad_credentials', /truck-1/]],
  // mtls: a certificate from the fleet CA, its CN the client id.
  ['mtls: a vehicle certificate for the client id', ['mtls'], attempt({ socket: vehicleCert() }), { vehicle: 'truck-1' }],
  [
    'mtls: a certificate with several OUs, the first vehicle',
    ['mtls'],
    attempt({ socket: tlsSocket({ cn: 'truck-1', ou: ['vehicle', 'fleet'] }) }),
    { vehicle: 'truck-1' },
  ],
  [
    'mtls: plain TCP',
    ['mtls'],
    attempt({ socket: new Socket() }),
    [5, 'no_certificate', /^vehicles connect over mqtts with a client certificate$/],
  ],
  ['mtls: no socket at all', ['mtls'], attempt({}), [5, 'no_certificate', /connect over mqtts/]],
  [
    'mtls: TLS without a client certificate',
    ['mtls'],
    attempt({ socket: tlsSocket('none') }),
    [5, 'no_certificate', /^no client certificate presented$/],
  ],
  [
    'mtls: the certificate of another vehicle',
    ['mtls'],
    attempt({ socket: vehicleCert('truck-2') }),
    [2, 'identity_mismatch', /^certificate is for truck-2, client id is truck-1$/],
  ],
  [
    'mtls: a certificate without OU',
    ['mtls'],
    attempt({ socket: tlsSocket({ cn: 'truck-1' }) }),
    [5, 'untrusted_certificate', /^certificate truck-1 is not a vehicle certificate \(OU=none\)$/],
  ],
  [
    'mtls: a certificate of another OU',
    ['mtls'],
    attempt({ socket: tlsSocket({ cn: 'truck-1', ou: 'staff' }) }),
    [5, 'untrusted_certificate', /\(OU=staff\)/],
  ],
  [
    'mtls: a revoked certificate',
    ['mtls'],
    attempt({ socket: vehicleCert('truck-1', '000A1B2C') }),
    [5, 'revoked', /^certificate truck-1 \(serial A1B2C\) is revoked$/],
  ],
  ['mtls: a revoked serial in lower case', ['mtls'], attempt({ socket: vehicleCert('truck-1', '0a1b2c') }), [5, 'revoked', /serial A1B2C/]],
  ['mtls: a password is no certificate', ['mtls'], attempt({ username: 'truck-1', password: pw(SECRET) }), [5, 'no_certificate', /mqtts/]],
];

/** Every reason the TLS layer gives, in words, with the code kept. */
const UNTRUSTED: [string, RegExp][] = [
  ['DEPTH_ZERO_SELF_SIGNED_CERT', /it is self-signed, not issued by the fleet CA/],
  ['SELF_SIGNED_CERT_IN_CHAIN', /its chain ends in a CA other than the fleet CA/],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', /it is not signed by the fleet CA \(another CA, perhaps of the same name\)/],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', /it is not issued by the fleet CA/],
  ['UNABLE_TO_GET_ISSUER_CERT', /it is not issued by the fleet CA/],
  ['CERT_SIGNATURE_FAILURE', /its signature does not verify against the fleet CA/],
  ['CERT_HAS_EXPIRED', /it has expired/],
  ['CERT_NOT_YET_VALID', /it is not valid yet \(or the gateway's clock is behind\)/],
  ['INVALID_PURPOSE', /it is not a client certificate \(extended key usage\)/],
  ['CERT_REVOKED', /it does not verify against the fleet CA/],
];
for (const [code, words] of UNTRUSTED) {
  table.push([
    `a certificate refused by TLS with ${code}`,
    ['mtls'],
    attempt({ socket: tlsSocket({ cn: 'truck-1', ou: 'vehicle', serial: '00FF' }, code) }),
    [5, 'untrusted_certificate', new RegExp(`^certificate truck-1 \\(serial FF\\) not accepted: ${words.source} \\(${code}\\)$`)],
  ]);
}

describe('Authenticator', () => {
  for (const [what, modes, a, expected] of table) {
    for (const mode of modes) {
      it(`${mode}: ${what}`, () => check(authenticators[mode].check(a), expected, `${mode}: ${what}`));
    }
  }

  it('will not run password mode without device credentials', () => {
    assert.throws(() => new Authenticator('password', TOKEN), /password mode needs device credentials/);
  });
});

describe('normalSerial', () => {
  it('writes serials as the revocation list reader does: upper case, no leading zeros, zero kept', () => {
    assert.deepEqual(['0a1b', '00FF', 'abc', '0', '000', ''].map(normalSerial), ['A1B', 'FF', 'ABC', '0', '0', '']);
  });
});
