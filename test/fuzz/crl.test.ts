import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { revokedSerials } from '../../gateway/crl.js';
import { ROOT } from '../support/paths.js';
import { cases, FuzzTally, fuzzRandom, Mutator, reasonOf } from './mutators.js';

/**
 * Real lists, made once by scripts/pki.sh (openssl, ECDSA P-256) and kept, so a seed replays
 * the same cases: the fleet CA's empty list (after `init`), with truck-2 revoked, and with
 * truck-1, truck-2 and truck-4 revoked (`enroll` gave truck-1 to truck-4 serials 1000 to 1003);
 * and a list of another CA of the same name.
 */
const FIXTURES = join(ROOT, 'test', 'fuzz', 'fixtures', 'crl');
const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'latin1');

/** A revocation list as openssl wrote it, its DER, and the serials it revokes. */
interface RealList {
  name: string;
  pem: string;
  der: Buffer;
  serials: Set<string>;
}

const fromPem = (pem: string) => Buffer.from(pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, ''), 'base64');
const toPem = (der: Buffer) => `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END X509 CRL-----\n`;
const realList = (name: string, serials: string[]): RealList => ({
  name,
  pem: fixture(name),
  der: fromPem(fixture(name)),
  serials: new Set(serials),
});

const fleetCa = fixture('fleet-ca.crt');
const lists = [realList('empty.pem', []), realList('one-revoked.pem', ['1001']), realList('three-revoked.pem', ['1000', '1001', '1003'])];
const foreign = fixture('foreign-ca.pem');

/** Tags, lengths and algorithm identifiers a revocation list is made of, for the mutations to insert. */
const DER_TOKENS = [
  '\x30\x82',
  '\x30\x81',
  '\x30\x80',
  '\x30\x00',
  '\x02\x01\x00',
  '\x02\x01\x01',
  '\x02\x00',
  '\x17\x0d',
  '\x18\x0f',
  '\xa0\x0e',
  '\x03\x47\x00',
  '\x03\x00',
  '\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02',
  '\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b',
  '\x05\x00',
  '\x84\xff\xff\xff\xff',
  '\x85\x01\x00\x00\x00\x00',
];

/**
 * One case: the list is refused with an Error whose message says it is the revocation list
 * and what is wrong (the reason counted), or accepted, and then only as exactly `expected`.
 */
function crlCase(pem: string, expected: Set<string> | undefined): string | undefined {
  let serials: Set<string>;
  try {
    serials = revokedSerials(pem, fleetCa);
  } catch (err) {
    // Counted by what is wrong: the message after its "revocation list" prefix.
    if (err instanceof Error && /^revocation list\b/.test(err.message)) return reasonOf(err.message.replace(/^revocation list:? ?/, ''));
    throw err;
  }
  if (expected === undefined) throw new Error(`a changed list was accepted, revoking ${JSON.stringify([...serials])}`);
  assert.deepEqual(serials, expected, 'accepted as a different list');
  return undefined;
}

describe('fuzz: certificate revocation lists (gateway/crl.ts)', () => {
  it('reads the real lists, and refuses a list signed by another CA', () => {
    for (const l of lists) assert.deepEqual(revokedSerials(l.pem, fleetCa), l.serials, l.name);
    assert.throws(() => revokedSerials(foreign, fleetCa), /^Error: revocation list: its signature does not verify against the fleet CA/);
  });

  it('every truncation of a real list is refused with a reason', () => {
    const tally = new FuzzTally('revocation list (truncated)');
    for (const l of lists) {
      for (let length = 0; length < l.der.length; length++) {
        const pem = toPem(l.der.subarray(0, length));
        tally.check(pem, () => crlCase(pem, undefined));
      }
    }
    tally.finish({ minCases: 500 });
  });

  it('mutated DER is refused with a reason, never read as another list', () => {
    const rnd = fuzzRandom('revocation list der');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('revocation list (DER mutated)');
    const splice = lists.map((l) => l.der);
    for (let i = 0, n = cases(20_000); i < n; i++) {
      const l = m.pick(lists);
      const der = m.mutate(l.der, { dictionary: DER_TOKENS, splice });
      const pem = toPem(der);
      // A mutation (a splice, say) can give back the very bytes of one of the real lists: that list it is.
      tally.check(pem, () => crlCase(pem, lists.find((x) => x.der.equals(der))?.serials));
    }
    tally.finish({ minCases: cases(20_000) });
    assert.ok(Object.keys(tally.reasons).length >= 5, `refusals name what is wrong: ${JSON.stringify(tally.reasons)}`);
  });

  it('mutated PEM text is refused with a reason, or read as the very list it still encodes', () => {
    const rnd = fuzzRandom('revocation list pem');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('revocation list (PEM mutated)');
    for (let i = 0, n = cases(10_000); i < n; i++) {
      const l = m.pick(lists);
      const pem = m.mutateText(l.pem, { dictionary: ['-----', 'BEGIN', 'END', ' X509 CRL', '\n', '\r\n', '=', '==', '+', '/', 'A'] });
      tally.check(pem, () => crlCase(pem, lists.find((x) => sameBytes(pem, x.der))?.serials));
    }
    tally.finish({ minCases: cases(10_000) });
  });
});

/** Whether mutated PEM text still carries exactly the original DER (RFC 7468: whitespace may go anywhere in the base64). */
function sameBytes(pem: string, der: Buffer): boolean {
  const base64 = /-----BEGIN X509 CRL-----([^-]*)-----END X509 CRL-----/.exec(pem)?.[1]?.replace(/\s+/g, '');
  return (
    base64 !== undefined && /^[A-Za-z0-9+/]*={0,2}$/.test(base64) && base64.length % 4 === 0 && Buffer.from(base64, 'base64').equals(der)
  );
}
