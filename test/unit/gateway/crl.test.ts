import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { revokedSerials } from '../../../gateway/crl.js';
import { tempDir } from '../../support/harness.js';
import { ROOT } from '../../support/paths.js';

const PKI = join(ROOT, 'scripts', 'pki.sh');

describe('revokedSerials', () => {
  it('reads the serials of an openssl revocation list as Node names a certificate\'s serial', () => {
    const dir = tempDir('fleet-crl-');
    const pki = (...args: string[]) => execFileSync('bash', [PKI, dir, ...args], { encoding: 'utf8' });
    pki('init');
    assert.deepEqual([...revokedSerials(readFileSync(join(dir, 'crl.pem'), 'latin1'))], [], 'a new CA revokes nothing');
    for (const v of ['truck-1', 'truck-2', 'truck-3']) pki('enroll', v);
    pki('revoke', 'truck-1');
    pki('revoke', 'truck-3');
    const serial = (v: string) => new X509Certificate(readFileSync(join(dir, 'issued', `${v}.crt`))).serialNumber;
    assert.deepEqual(revokedSerials(readFileSync(join(dir, 'crl.pem'), 'latin1')), new Set([serial('truck-1'), serial('truck-3')]));
  });

  it('refuses a truncated list rather than reading past it', () => {
    const pem = `-----BEGIN X509 CRL-----\n${Buffer.from([0x30, 0x82, 0x01, 0x00, 0x30, 0x05]).toString('base64')}\n-----END X509 CRL-----`;
    assert.throws(() => revokedSerials(pem), /revocation list is truncated/);
  });
});
