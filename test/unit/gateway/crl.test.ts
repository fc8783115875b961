import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { sign, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { readRevocationList, revokedSerials } from '../../../gateway/crl.js';
import { ConfigError } from '../../../shared/config.js';
import { tempDir } from '../../support/harness.js';
import { ROOT } from '../../support/paths.js';

const PKI = join(ROOT, 'scripts', 'pki.sh');

const dir = tempDir('fleet-crl-');
const pki = (...args: string[]) => execFileSync('bash', [PKI, dir, ...args], { encoding: 'utf8' });
let ca: string;
let caKey: string;
beforeAll(() => {
  pki('init');
  ca = readFileSync(join(dir, 'ca.crt'), 'latin1');
  caKey = readFileSync(join(dir, 'ca.key'), 'latin1');
});

const crlPem = () => readFileSync(join(dir, 'crl.pem'), 'latin1');
const toPem = (der: Buffer) => `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END X509 CRL-----\n`;
const fromPem = (pem: string) => Buffer.from(pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, ''), 'base64');

/** A DER element: tag, definite length in its shortest form, contents. */
function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const int = (h: string) => tlv(0x02, hex(h));
const utc = (s = '260101000000Z') => tlv(0x17, Buffer.from(s, 'latin1'));
const ECDSA_SHA256 = seq(tlv(0x06, hex('2a8648ce3d040302')));
const ISSUER = seq(tlv(0x31, seq(tlv(0x06, hex('550403')), tlv(0x0c, Buffer.from('fleet CA')))));
const entry = (serial: string, ...rest: Buffer[]) => seq(int(serial), utc(), ...rest);

/**
 * A list made by hand and signed with the fleet CA's key, so that its structure, not its
 * signature, is what a case tests. `tbs` gives the fields inside tbsCertList.
 */
function signedList(tbs: Buffer[], opts: { outerAlgorithm?: Buffer; signature?: (sig: Buffer) => Buffer; after?: Buffer } = {}): string {
  const tbsDer = seq(...tbs);
  const sig = sign('sha256', tbsDer, caKey);
  const bits = opts.signature ? opts.signature(sig) : Buffer.concat([Buffer.from([0]), sig]);
  return toPem(Buffer.concat([seq(tbsDer, opts.outerAlgorithm ?? ECDSA_SHA256, tlv(0x03, bits)), opts.after ?? Buffer.alloc(0)]));
}
const fields = (revoked?: Buffer) => [int('01'), ECDSA_SHA256, ISSUER, utc(), utc('260201000000Z'), ...(revoked ? [revoked] : [])];

/** The refusal's message, which must say it is the revocation list. */
function refusal(pem: string, caPem = ca): string {
  try {
    revokedSerials(pem, caPem);
  } catch (err) {
    assert.ok(err instanceof Error);
    assert.match(err.message, /^revocation list\b/);
    return err.message;
  }
  assert.fail('accepted');
}

describe('revokedSerials with lists from openssl', () => {
  it("reads the serials of an openssl revocation list as Node names a certificate's serial", () => {
    assert.deepEqual([...revokedSerials(crlPem(), ca)], [], 'a new CA revokes nothing');
    for (const v of ['truck-1', 'truck-2', 'truck-3']) pki('enroll', v);
    pki('revoke', 'truck-1');
    pki('revoke', 'truck-3');
    const serial = (v: string) => new X509Certificate(readFileSync(join(dir, 'issued', `${v}.crt`))).serialNumber;
    assert.deepEqual(revokedSerials(crlPem(), ca), new Set([serial('truck-1'), serial('truck-3')]));
  });

  it('refuses a list with one byte of its signed part changed (a serial no longer revoked), as its signature no longer verifies', () => {
    const der = fromPem(crlPem());
    const at = der.indexOf(hex('0202'), 40); // the first revoked serial, two octets
    assert.ok(at > 0);
    der[at + 3]! ^= 0x01;
    assert.match(refusal(toPem(der)), /its signature does not verify against the fleet CA/);
  });

  it('refuses bytes after the list', () => {
    const der = Buffer.concat([fromPem(crlPem()), hex('0500')]);
    assert.equal(refusal(toPem(der)), 'revocation list: 2 unexpected bytes at the end of the PEM block (byte ' + (der.length - 2) + ')');
  });

  it('refuses the list of another CA, even one of the same name', () => {
    const other = tempDir('fleet-crl-other-');
    execFileSync('bash', [PKI, other, 'init']);
    assert.match(refusal(readFileSync(join(other, 'crl.pem'), 'latin1')), /its signature does not verify against the fleet CA/);
  });

  it('takes a list signed by any CA of a bundle (the old and the new one), and needs a certificate to verify with', () => {
    const other = tempDir('fleet-crl-bundle-');
    execFileSync('bash', [PKI, other, 'init']);
    const bundle = `${readFileSync(join(other, 'ca.crt'), 'latin1')}${ca}`;
    assert.deepEqual(revokedSerials(crlPem(), bundle).size, 2);
    assert.match(refusal(crlPem(), 'no certificate here'), /the fleet CA file holds no PEM certificate/);
  });

  for (const [kind, keygen, md] of [
    ['RSA with SHA-384', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], 'sha384'],
    ['ECDSA P-384 with SHA-512', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'sha512'],
    ['Ed25519', ['-algorithm', 'ED25519'], 'default'],
  ] as const) {
    it(`verifies a list signed with ${kind}`, () => {
      const d = tempDir('fleet-crl-alg-');
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'pipe', 'pipe'] });
      ssl('genpkey', ...keygen, '-out', 'ca.key');
      ssl('req', '-new', '-x509', '-key', 'ca.key', '-subj', '/CN=test CA', '-days', '2', '-out', 'ca.crt');
      writeFileSync(join(d, 'index.txt'), '');
      writeFileSync(join(d, 'crlnumber'), '1000\n');
      writeFileSync(
        join(d, 'ca.cnf'),
        `[ca]\ndefault_ca = CA\n[CA]\ndatabase = ${d}/index.txt\ncrlnumber = ${d}/crlnumber\ncertificate = ${d}/ca.crt\nprivate_key = ${d}/ca.key\ndefault_md = ${md}\ndefault_crl_days = 1\n`,
      );
      ssl('ca', '-batch', '-config', 'ca.cnf', '-gencrl', '-out', 'crl.pem');
      assert.deepEqual(revokedSerials(readFileSync(join(d, 'crl.pem'), 'latin1'), readFileSync(join(d, 'ca.crt'), 'latin1')), new Set());
      assert.match(refusal(readFileSync(join(d, 'crl.pem'), 'latin1')), /does not verify against the fleet CA/, 'and not with another CA');
    });
  }
});

describe('revokedSerials with lists made by hand and signed by the fleet CA', () => {
  it('reads them: serials without their sign octet, entries with extensions, list extensions', () => {
    const revoked = seq(entry('1000'), entry('00ff', seq(seq(tlv(0x06, hex('551d15')), tlv(0x04, hex('0a0101'))))), entry('00'));
    const pem = signedList([...fields(revoked), tlv(0xa0, seq(seq(tlv(0x06, hex('551d14')), tlv(0x04, hex('02021000')))))]);
    assert.deepEqual(revokedSerials(pem, ca), new Set(['1000', 'FF', '0']));
  });

  it('reads a v1 list: no version, no nextUpdate, no revoked certificates', () => {
    assert.deepEqual(revokedSerials(signedList([ECDSA_SHA256, ISSUER, utc()]), ca), new Set());
  });

  /** Made when run: the CA's key is there only then. */
  const cases: [string, () => string, RegExp][] = [
    [
      'a serial whose length runs past its entry',
      () => signedList(fields(seq(seq(hex('02 05 1000')), entry('1001')))),
      /truncated in revokedCertificates\[0\]\.userCertificate/,
    ],
    [
      'an entry with a field too many',
      () => signedList(fields(seq(entry('1000', seq(), int('01'))))),
      /unexpected bytes at the end of revokedCertificates\[0\]/,
    ],
    [
      'a serial that is not an INTEGER',
      () => signedList(fields(seq(seq(tlv(0x04, hex('1000')), utc())))),
      /revokedCertificates\[0\]\.userCertificate is not an INTEGER \(tag 0x04/,
    ],
    [
      'a revocation date that is not a time',
      () => signedList(fields(seq(seq(int('1000'), int('01'))))),
      /revokedCertificates\[0\]\.revocationDate is not a time/,
    ],
    ['an empty serial', () => signedList(fields(seq(seq(tlv(0x02), utc())))), /userCertificate is empty/],
    ['a negative serial', () => signedList(fields(seq(entry('ff10')))), /userCertificate is negative/],
    ['a serial with a leading zero DER does not allow', () => signedList(fields(seq(entry('0010')))), /userCertificate has a leading zero/],
    ['a serial longer than 20 octets', () => signedList(fields(seq(entry('01'.repeat(22))))), /userCertificate is longer than 20 octets/],
    ['version 3', () => signedList([int('02'), ...fields().slice(1)]), /version is not v2/],
    ['no issuer', () => signedList([int('01'), ECDSA_SHA256, utc()]), /issuer is not a SEQUENCE \(tag 0x17/],
    ['no thisUpdate', () => signedList([int('01'), ECDSA_SHA256, ISSUER]), /thisUpdate is missing/],
    [
      'something after the extensions',
      () => signedList([...fields(), tlv(0xa0, seq()), int('01')]),
      /unexpected bytes at the end of tbsCertList/,
    ],
    [
      'an outer algorithm other than the signed one',
      () => signedList(fields(), { outerAlgorithm: seq(tlv(0x06, hex('2a8648ce3d040303'))) }),
      /signatureAlgorithm differs from tbsCertList\.signature/,
    ],
    [
      'an algorithm the gateway does not verify',
      () =>
        signedList([int('01'), seq(tlv(0x06, hex('2a864886f70d010104'))), ISSUER, utc()], {
          outerAlgorithm: seq(tlv(0x06, hex('2a864886f70d010104'))),
        }),
      /algorithm the gateway does not verify \(OID bytes 2a864886f70d010104\)/,
    ],
    [
      'a signature with unused bits',
      () => signedList(fields(), { signature: (sig) => Buffer.concat([Buffer.from([4]), sig]) }),
      /signatureValue is not a whole number of bytes/,
    ],
    [
      'a signature of other bytes',
      () =>
        signedList(fields(), {
          signature: (sig) => Buffer.concat([Buffer.from([0]), sign('sha256', Buffer.from('other'), caKey).subarray(0, sig.length)]),
        }),
      /does not verify/,
    ],
  ];
  for (const [what, pem, message] of cases) {
    it(`refuses ${what}, saying so`, () => assert.match(refusal(pem()), message));
  }
});

describe('revokedSerials with broken encodings', () => {
  it('refuses every truncation, naming where it ends', () => {
    const der = fromPem(crlPem());
    for (let n = 0; n < der.length; n++) assert.ok(refusal(toPem(der.subarray(0, n))), `${n} bytes`);
    assert.match(
      refusal(toPem(hex('30820100 3005'))),
      /^revocation list is truncated in the list: 256 bytes announced at byte 0, 2 there$/,
    );
  });

  it('refuses lengths DER does not allow: indefinite, over four octets, not in their shortest form', () => {
    assert.match(refusal(toPem(hex('3080 0000'))), /has a length DER does not allow in the list \(byte 1\)/);
    assert.match(refusal(toPem(hex('3085 0000000001 00'))), /has a length DER does not allow in the list/);
    assert.match(refusal(toPem(hex('3081 05 0203010001'))), /has a length not in its shortest form in the list/);
    assert.match(refusal(toPem(hex('308200 05 0203010001'))), /has a length not in its shortest form in the list/);
  });

  it('refuses what is not one PEM revocation list, or not base64 inside', () => {
    assert.match(refusal(''), /not a PEM revocation list/);
    assert.match(refusal(fromPem(crlPem()).toString('latin1')), /not a PEM revocation list/, 'DER as it is');
    assert.match(refusal(crlPem().replace('X509 CRL', 'CERTIFICATE')), /not a PEM revocation list/);
    const pem = crlPem();
    const body = pem.indexOf('\n') + 10;
    assert.match(refusal(`${pem.slice(0, body)}*${pem.slice(body)}`), /the PEM block is not valid base64/);
    assert.match(refusal(`${pem.slice(0, body)}A${pem.slice(body)}`), /the PEM block is not valid base64/, 'a character too many');
  });

  it('takes the base64 with line breaks anywhere, and text around the block', () => {
    const pem = crlPem();
    const moved = pem.replace(/\n(?!-----END)/g, '').replace('==', '=\r\n=');
    assert.deepEqual(revokedSerials(`openssl crl -text output\n${moved}trailing words\n`, ca), revokedSerials(pem, ca));
  });
});

describe('readRevocationList', () => {
  it('names tlsCrl and the file in the configuration error', () => {
    const bad = join(dir, 'bad.pem');
    writeFileSync(bad, 'nothing');
    assert.throws(
      () => readRevocationList(bad, join(dir, 'ca.crt')),
      (err: Error) =>
        err instanceof ConfigError &&
        err.message === `tlsCrl: ${bad}: revocation list: not a PEM revocation list (-----BEGIN X509 CRL----- … -----END X509 CRL-----)`,
    );
    assert.equal(readRevocationList(join(dir, 'crl.pem'), join(dir, 'ca.crt')).size, 2);
  });
});
