import { verify, X509Certificate, type KeyObject } from 'node:crypto';
import { ConfigError, readSettingFile } from '../shared/config.js';

/**
 * The serial numbers a PEM certificate revocation list (RFC 5280 CertificateList) revokes,
 * in the form Node gives a peer certificate's `serialNumber` (hex, upper case, no leading
 * zeros). The gateway checks serials against it itself (see README, Device identity).
 *
 * The list must be what the fleet CA signed: its DER is read strictly (every tag, length and
 * field where RFC 5280 puts it, nothing after it) and its signature verified with the key of
 * a certificate in `caPem`. Anything else, a corrupted byte or a list of another CA, throws an
 * Error saying what is wrong, and is never read as some other list.
 */
export function revokedSerials(pem: string, caPem: string): Set<string> {
  const der = pemBody(pem);
  const whole = new DerReader(der, 0, der.length);
  const list = whole.sequence('the list');
  whole.done('the PEM block');
  const tbsStart = list.at;
  const tbs = list.sequence('tbsCertList');
  const tbsBytes = der.subarray(tbsStart, tbs.end);
  const algorithm = list.sequence('signatureAlgorithm');
  const hash = hashOf(algorithm.element(OID, 'signatureAlgorithm.algorithm'));
  const signature = bitString(list.element(BIT_STRING, 'signatureValue'));
  list.done('the list');

  // version (v2, when present) signature issuer thisUpdate nextUpdate? revokedCertificates? [0] crlExtensions?
  if (tbs.next() === INTEGER) {
    const version = tbs.element(INTEGER, 'version');
    if (version.length !== 1 || version[0] !== 1) throw new Error('revocation list: version is not v2 (1)');
  }
  const innerAlgorithm = tbs.sequence('tbsCertList.signature');
  tbs.sequence('issuer');
  tbs.time('thisUpdate');
  if (tbs.next() === UTC_TIME || tbs.next() === GENERALIZED_TIME) tbs.time('nextUpdate');
  const serials = new Set<string>();
  if (tbs.next() === SEQUENCE) {
    const revoked = tbs.sequence('revokedCertificates');
    for (let i = 0; revoked.next() !== undefined; i++) {
      const entry = revoked.sequence(`revokedCertificates[${i}]`);
      serials.add(serialOf(entry.element(INTEGER, `revokedCertificates[${i}].userCertificate`), i));
      entry.time(`revokedCertificates[${i}].revocationDate`);
      if (entry.next() !== undefined) entry.sequence(`revokedCertificates[${i}].crlEntryExtensions`);
      entry.done(`revokedCertificates[${i}]`);
    }
  }
  if (tbs.next() === CRL_EXTENSIONS) tbs.element(CRL_EXTENSIONS, 'crlExtensions');
  tbs.done('tbsCertList');

  // RFC 5280 5.1.1.2: the outer algorithm is the one the signed part names.
  if (!algorithm.bytes.equals(innerAlgorithm.bytes))
    throw new Error('revocation list: signatureAlgorithm differs from tbsCertList.signature');
  if (!caKeys(caPem).some((key) => verifies(hash, tbsBytes, key, signature))) {
    throw new Error('revocation list: its signature does not verify against the fleet CA (another CA, or a changed list)');
  }
  return serials;
}

/** The serials the revocation list at `path` names, signed by the CA at `caPath`; any problem is a configuration error naming tlsCrl. */
export function readRevocationList(path: string, caPath: string): Set<string> {
  const pem = readSettingFile('tlsCrl', path).toString('latin1');
  const ca = readSettingFile('tlsCa', caPath).toString('latin1');
  try {
    return revokedSerials(pem, ca);
  } catch (err) {
    throw new ConfigError(`tlsCrl: ${path}: ${(err as Error).message}`);
  }
}

const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OID = 0x06;
const SEQUENCE = 0x30;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
/** crlExtensions: [0] EXPLICIT, constructed. */
const CRL_EXTENSIONS = 0xa0;

const TAG_NAMES: Record<number, string> = {
  [INTEGER]: 'an INTEGER',
  [BIT_STRING]: 'a BIT STRING',
  [OID]: 'an OBJECT IDENTIFIER',
  [SEQUENCE]: 'a SEQUENCE',
  [CRL_EXTENSIONS]: 'extensions ([0])',
};

/** The one PEM block's DER; text around it (openssl -text output) is allowed, nothing else in it. */
function pemBody(pem: string): Buffer {
  const block = /-----BEGIN X509 CRL-----([^-]*)-----END X509 CRL-----/.exec(pem);
  if (!block) throw new Error('revocation list: not a PEM revocation list (-----BEGIN X509 CRL----- … -----END X509 CRL-----)');
  const base64 = block[1]!.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0)
    throw new Error('revocation list: the PEM block is not valid base64');
  return Buffer.from(base64, 'base64');
}

/**
 * Reads DER elements one after the other between `at` and `end`, each checked to lie within
 * them and to be encoded as DER requires (definite, shortest lengths).
 */
class DerReader {
  constructor(
    private readonly der: Buffer,
    public at: number,
    readonly end: number,
    /** The whole element (tag and length too) this reader reads the inside of. */
    readonly bytes: Buffer = der.subarray(at, end),
  ) {}

  /** The next element's tag, undefined at the end. */
  next(): number | undefined {
    return this.at < this.end ? this.der[this.at] : undefined;
  }

  /** The next element's contents, checking its tag. */
  element(tag: number, what: string): Buffer {
    const { start, end } = this.header(tag, what);
    this.at = end;
    return this.der.subarray(start, end);
  }

  sequence(what: string): DerReader {
    const from = this.at;
    const { start, end } = this.header(SEQUENCE, what);
    this.at = end;
    return new DerReader(this.der, start, end, this.der.subarray(from, end));
  }

  time(what: string): void {
    this.present(what);
    const tag = this.next();
    if (tag !== UTC_TIME && tag !== GENERALIZED_TIME) throw this.unexpected(what, 'a time (UTCTime or GeneralizedTime)');
    this.at = this.header(tag, what).end;
  }

  /** Nothing may follow the last field. */
  done(what: string): void {
    if (this.at !== this.end)
      throw new Error(`revocation list: ${this.end - this.at} unexpected bytes at the end of ${what} (byte ${this.at})`);
  }

  private present(what: string): void {
    if (this.at >= this.end) throw new Error(`revocation list: ${what} is missing: its part ends at byte ${this.end}`);
  }

  private header(tag: number, what: string): { start: number; end: number } {
    this.present(what);
    if (this.der[this.at] !== tag) throw this.unexpected(what, TAG_NAMES[tag] ?? `tag 0x${tag.toString(16)}`);
    if (this.at + 2 > this.end) throw new Error(`revocation list is truncated in ${what} (byte ${this.at})`);
    let length = this.der[this.at + 1]!;
    let start = this.at + 2;
    if (length & 0x80) {
      const bytes = length & 0x7f;
      if (bytes === 0 || bytes > 4) throw new Error(`revocation list has a length DER does not allow in ${what} (byte ${this.at + 1})`);
      if (start + bytes > this.end) throw new Error(`revocation list is truncated in the length of ${what} (byte ${this.at + 1})`);
      length = 0;
      for (let i = 0; i < bytes; i++) length = length * 256 + this.der[start + i]!;
      if (length < 0x80 || this.der[start] === 0)
        throw new Error(`revocation list has a length not in its shortest form in ${what} (byte ${this.at + 1})`);
      start += bytes;
    }
    const end = start + length;
    if (end > this.end)
      throw new Error(`revocation list is truncated in ${what}: ${length} bytes announced at byte ${this.at}, ${this.end - start} there`);
    return { start, end };
  }

  private unexpected(what: string, expected: string): Error {
    const tag = this.der[this.at]!;
    return new Error(`revocation list: ${what} is not ${expected} (tag 0x${tag.toString(16).padStart(2, '0')} at byte ${this.at})`);
  }
}

/** A certificate serial: a positive INTEGER of at most 20 octets (RFC 5280 4.1.2.2), in the form authenticator.normalSerial gives. */
function serialOf(value: Buffer, i: number): string {
  const what = `revokedCertificates[${i}].userCertificate`;
  if (value.length === 0) throw new Error(`revocation list: ${what} is empty`);
  if (value[0]! & 0x80) throw new Error(`revocation list: ${what} is negative`);
  if (value.length > 1 && value[0] === 0 && !(value[1]! & 0x80))
    throw new Error(`revocation list: ${what} has a leading zero DER does not allow`);
  if (value.length > 21) throw new Error(`revocation list: ${what} is longer than 20 octets`);
  return value
    .toString('hex')
    .toUpperCase()
    .replace(/^0+(?=.)/, '');
}

/** The signature's bytes: a BIT STRING with no unused bits. */
function bitString(value: Buffer): Buffer {
  if (value.length < 2 || value[0] !== 0) throw new Error('revocation list: signatureValue is not a whole number of bytes');
  return value.subarray(1);
}

/**
 * The digest an AlgorithmIdentifier names, for the algorithms a CA signs lists with (null:
 * the algorithm has its own, Ed25519). The OIDs' DER contents, as hex.
 */
const SIGNATURE_ALGORITHMS: Record<string, { name: string; hash: string | null }> = {
  '2a8648ce3d040302': { name: 'ecdsa-with-SHA256', hash: 'sha256' },
  '2a8648ce3d040303': { name: 'ecdsa-with-SHA384', hash: 'sha384' },
  '2a8648ce3d040304': { name: 'ecdsa-with-SHA512', hash: 'sha512' },
  '2a864886f70d01010b': { name: 'sha256WithRSAEncryption', hash: 'sha256' },
  '2a864886f70d01010c': { name: 'sha384WithRSAEncryption', hash: 'sha384' },
  '2a864886f70d01010d': { name: 'sha512WithRSAEncryption', hash: 'sha512' },
  '2b6570': { name: 'Ed25519', hash: null },
};

function hashOf(algorithmOid: Buffer): string | null {
  const oid = algorithmOid.toString('hex');
  const known = SIGNATURE_ALGORITHMS[oid];
  if (!known)
    throw new Error(`revocation list: signed with an algorithm the gateway does not verify (OID bytes ${oid}); use ECDSA, RSA or Ed25519`);
  return known.hash;
}

/** The public keys of every certificate in the CA file (a bundle may hold the old and the new CA). */
function caKeys(caPem: string): KeyObject[] {
  const blocks = caPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const keys = blocks.map((b) => new X509Certificate(b).publicKey);
  if (keys.length === 0) throw new Error('revocation list: the fleet CA file holds no PEM certificate to verify it with');
  return keys;
}

/** A signature made with another kind of key, or malformed, simply does not verify. */
function verifies(hash: string | null, data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(hash, data, key, signature);
  } catch {
    return false;
  }
}
