import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes as `scrypt$N$r$p$salt$hash` (salt and hash base64url), so the cost can
 * be raised later without breaking the hashes already configured.
 */
const COST = { N: 16_384, r: 8, p: 1 };
const KEY_BYTES = 32;
const HASH = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([\w-]{16,})\$([\w-]{40,})$/;
/** A configured user: `name:hash`. */
export const USER_ENTRY = /^[^:\s]{1,64}:scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, COST);
  return `scrypt$${COST.N}$${COST.r}$${COST.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Whether `password` matches `hash`; a malformed hash matches nothing. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = HASH.exec(hash);
  if (!m) return false;
  const expected = Buffer.from(m[5]!, 'base64url');
  const key = await derive(
    password,
    Buffer.from(m[4]!, 'base64url'),
    { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) },
    expected.length,
  );
  return timingSafeEqual(key, expected);
}

/** `name:hash` entries → name → hash. */
export function parseUsers(entries: readonly string[]): Map<string, string> {
  return new Map(entries.map((e) => [e.slice(0, e.indexOf(':')), e.slice(e.indexOf(':') + 1)]));
}

function derive(password: string, salt: Buffer, cost: ScryptOptions, bytes = KEY_BYTES): Promise<Buffer> {
  // The async form runs on the thread pool: a sign-in never stalls the event stream.
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, bytes, { ...cost, maxmem: 256 * cost.N! * cost.r! }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}
