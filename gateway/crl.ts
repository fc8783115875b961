import { ConfigError, readSettingFile } from '../shared/config.js';

/**
 * The serial numbers a PEM certificate revocation list (RFC 5280 CertificateList) revokes,
 * in the form Node gives a peer certificate's `serialNumber` (hex, upper case, no leading
 * zeros). TLS checks the list at each handshake by itself; this is for the sessions that
 * are already open when the list changes. Only the few DER elements on the way are read.
 */
export function revokedSerials(pem: string): Set<string> {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, ''), 'base64');
  const list = read(der, 0);
  const tbs = read(der, list.start);
  const serials = new Set<string>();
  let at = tbs.start;
  // version? signature issuer thisUpdate nextUpdate? revokedCertificates? [0] extensions?
  if (der[at] === INTEGER) at = read(der, at).end;
  at = read(der, at).end; // signature algorithm
  at = read(der, at).end; // issuer
  at = read(der, at).end; // thisUpdate
  if (at < tbs.end && (der[at] === UTC_TIME || der[at] === GENERALIZED_TIME)) at = read(der, at).end;
  if (at >= tbs.end || der[at] !== SEQUENCE) return serials;
  const revoked = read(der, at);
  for (let entry = revoked.start; entry < revoked.end; entry = read(der, entry).end) {
    const serial = read(der, read(der, entry).start);
    serials.add(der.subarray(serial.start, serial.end).toString('hex').toUpperCase().replace(/^0+(?=.)/, ''));
  }
  return serials;
}

const INTEGER = 0x02;
const SEQUENCE = 0x30;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** One DER element at `at`: where its value starts and where the element ends. */
function read(der: Buffer, at: number): { start: number; end: number } {
  if (at + 2 > der.length) throw new Error('revocation list is truncated');
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const bytes = length & 0x7f;
    if (bytes === 0 || bytes > 4) throw new Error('revocation list has a length DER does not allow');
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  const end = start + length;
  if (end > der.length) throw new Error('revocation list is truncated');
  return { start, end };
}

/** The serials the revocation list at `path` names; a list that cannot be read or parsed is a configuration error naming tlsCrl. */
export function readRevocationList(path: string): Set<string> {
  const pem = readSettingFile('tlsCrl', path).toString('latin1');
  try {
    return revokedSerials(pem);
  } catch (err) {
    throw new ConfigError(`tlsCrl: ${path}: ${(err as Error).message}`);
  }
}
