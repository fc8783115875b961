import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { VEHICLE_ID } from '../shared/contract/reading.js';
import { sameSecret } from '../shared/secrets.js';

/**
 * Per-vehicle secrets for the gateway's password mode, in a JSON file holding only hashes:
 * `{"vehicles": {"truck-7": "sha256$…"}, "revoked": {"truck-9": 1764000000000}}`.
 *
 * The secrets are 192 random bits made by `fleet device add`, not passwords people choose,
 * so a plain SHA-256 cannot be reversed by guessing, and checking one stays cheap when a
 * whole fleet reconnects after a gateway restart (a slow hash would make that take minutes).
 */
const fileSchema = z
  .object({
    vehicles: z.record(z.string().regex(VEHICLE_ID), z.string().regex(/^sha256\$[\w-]{43}$/)).default({}),
    revoked: z.record(z.string().regex(VEHICLE_ID), z.number()).default({}),
  })
  .strict();

type CredentialsFile = z.infer<typeof fileSchema>;

export type CredentialCheck = 'ok' | 'unknown' | 'revoked' | 'wrong';

const hashOf = (secret: string) => `sha256$${createHash('sha256').update(secret, 'utf8').digest('base64url')}`;

/** How often the gateway looks at the credentials file for changes. */
const LOOK_EVERY_MS = 1000;

export class DeviceCredentials {
  /** Until load(), no vehicle is enrolled: a gateway that has not read its credentials admits none. */
  private doc: CredentialsFile = { vehicles: {}, revoked: {} };
  /** The file's identity, size and times when it was last read. */
  private version?: string;
  private looking?: NodeJS.Timeout;

  /** Touches nothing yet: load() reads the file. */
  constructor(
    private readonly path: string,
    private readonly onReload: (err?: Error) => void = () => {},
  ) {}

  /**
   * Reads the file (throwing, with the file and field named, when it is not valid) and from
   * then on again whenever it changes, so `fleet device revoke` takes effect without a restart.
   */
  load(): void {
    // Taken before the read, so a change made while reading is seen at the next look.
    const version = versionOf(this.path);
    this.doc = read(this.path);
    this.version = version;
    if (this.looking) return;
    this.looking = setInterval(() => this.lookForChange(), LOOK_EVERY_MS);
    // The gateway's listeners keep it running; this alone never should.
    this.looking.unref();
  }

  check(vehicle: string, secret: string | undefined): CredentialCheck {
    if (this.doc.revoked[vehicle] !== undefined) return 'revoked';
    const stored = this.doc.vehicles[vehicle];
    if (stored === undefined) return 'unknown';
    if (secret === undefined) return 'wrong';
    return sameSecret(hashOf(secret), stored) ? 'ok' : 'wrong';
  }

  /** Whether the vehicle is still enrolled: false once revoked or removed. */
  admits(vehicle: string): boolean {
    return this.doc.revoked[vehicle] === undefined && this.doc.vehicles[vehicle] !== undefined;
  }

  close(): void {
    clearInterval(this.looking);
    this.looking = undefined;
  }

  private lookForChange(): void {
    const version = versionOf(this.path);
    if (version === this.version) return;
    // Set first: a broken file is reported once, not at every look.
    this.version = version;
    try {
      this.doc = read(this.path);
      this.onReload();
    } catch (err) {
      // A half-edited file keeps the last good credentials in force.
      this.onReload(err as Error);
    }
  }

  /** Creates (or replaces) a vehicle's secret and returns it: the only time it exists in clear. */
  static add(path: string, vehicle: string): string {
    const secret = randomBytes(24).toString('base64url');
    update(path, (doc) => {
      doc.vehicles[vehicle] = hashOf(secret);
      delete doc.revoked[vehicle];
    });
    return secret;
  }

  /** Revokes a vehicle: its secret is forgotten and its id refused until it is added again. */
  static revoke(path: string, vehicle: string, at = Date.now()): boolean {
    let known = false;
    update(path, (doc) => {
      known = doc.vehicles[vehicle] !== undefined;
      delete doc.vehicles[vehicle];
      doc.revoked[vehicle] = at;
    });
    return known;
  }
}

/** What changes when the file is rewritten (`fleet device` renames a new file into place) or edited. */
function versionOf(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return 'absent';
  }
}

function read(path: string): CredentialsFile {
  if (!existsSync(path)) return { vehicles: {}, revoked: {} };
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Rewrites the file through a rename, so the gateway never reads half of it. */
function update(path: string, change: (doc: CredentialsFile) => void): void {
  const doc = read(path);
  change(doc);
  // `fleet device add` may come before the gateway ever ran: its data directory, as the gateway makes it.
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
