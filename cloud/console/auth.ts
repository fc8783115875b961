import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { sameSecret } from '../../shared/secrets.js';
import { bearerToken, HttpError } from './http.js';
import { hashPassword, verifyPassword } from './passwords.js';
import type { SessionTable, StoredSession } from '../store.js';

export interface Principal {
  user: string;
  /** `session`: signed in on the page (cookie); `bearer`: the token sent with each request (scripts). */
  via: 'session' | 'bearer';
}

export interface AuthOptions {
  /** The shared console token; undefined when only users may sign in. */
  token?: string;
  /** User name → scrypt hash. */
  users: Map<string, string>;
  publicReads: boolean;
  sessionTtlMs: number;
}

export const SESSION_COOKIE = 'fleet_session';
const MAX_SESSIONS = 10_000;

/**
 * Who is asking. The page signs in once and then carries an HttpOnly, SameSite=Strict
 * session cookie; scripts send the token as a bearer header on every request. A cookie is
 * sent by the browser on its own, so a write carried by one must also come from our own
 * origin: that, with SameSite=Strict, is what keeps another site from acting for the user.
 * Sessions live in the store, kept by a hash of their id (a copy of the database holds no
 * usable cookie): every console on one store accepts the same cookie, and a restarted
 * console keeps everyone signed in.
 */
export class ConsoleAuth {
  /** Compared against when the name is unknown, so a wrong name costs as long as a wrong password. */
  private readonly decoy = hashPassword(randomBytes(16).toString('hex'));

  constructor(
    private readonly opts: AuthOptions,
    private readonly sessions: SessionTable,
  ) {}

  /** A configured user signs in with their password; anyone else by name with the token. */
  async signIn(user: string, secret: string, now: number): Promise<{ id: string; session: StoredSession } | undefined> {
    const hash = this.opts.users.get(user);
    const ok = hash ? await verifyPassword(secret, hash) : await this.isToken(secret);
    if (!ok) return undefined;
    const id = randomBytes(32).toString('base64url');
    const session = { user, expiresAt: now + this.opts.sessionTtlMs };
    await this.sessions.create(idHash(id), session, now, MAX_SESSIONS);
    return { id, session };
  }

  async signOut(req: IncomingMessage): Promise<void> {
    const id = sessionId(req);
    if (id) await this.sessions.delete(idHash(id));
  }

  async principal(req: IncomingMessage, now: number): Promise<Principal | undefined> {
    const token = bearerToken(req);
    if (token !== undefined)
      return this.opts.token !== undefined && sameSecret(token, this.opts.token) ? { user: 'token', via: 'bearer' } : undefined;
    const id = sessionId(req);
    const session = id === undefined ? undefined : await this.sessions.get(idHash(id), now);
    return session && { user: session.user, via: 'session' };
  }

  /** Reads need a sign-in unless the console is configured for public reads. */
  async requireRead(req: IncomingMessage, now: number): Promise<void> {
    if (!this.opts.publicReads) await this.requirePrincipal(req, now);
  }

  async requireWrite(req: IncomingMessage, now: number): Promise<Principal> {
    const principal = await this.requirePrincipal(req, now);
    if (principal.via === 'session') requireSameOrigin(req);
    return principal;
  }

  get publicReads(): boolean {
    return this.opts.publicReads;
  }

  private async isToken(secret: string): Promise<boolean> {
    await verifyPassword(secret, await this.decoy);
    return this.opts.token !== undefined && sameSecret(secret, this.opts.token);
  }

  private async requirePrincipal(req: IncomingMessage, now: number): Promise<Principal> {
    const principal = await this.principal(req, now);
    if (principal) return principal;
    throw new HttpError(401, 'sign in first (POST /api/session) or send Authorization: Bearer <console token>', {
      'www-authenticate': 'Bearer realm="fleet-console"',
    });
  }
}

/** The request must come from a page of this console: its Origin (or Sec-Fetch-Site) says so. */
export function requireSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  const fetchSite = req.headers['sec-fetch-site'];
  const same = origin !== undefined ? originHost(origin) === req.headers.host : fetchSite === 'same-origin';
  if (!same) throw new HttpError(403, 'origin: cross-site requests may not change anything; use the console page or a bearer token');
}

export function sessionCookie(id: string, maxAgeMs: number): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(maxAgeMs / 1000)}`;
}

export const CLEARED_COOKIE = `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;

/** A session id is 32 random bytes: one SHA-256 is enough to make the stored form useless as a cookie. */
const idHash = (id: string) => createHash('sha256').update(id).digest('base64url');

function sessionId(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === SESSION_COOKIE && value) return value;
  }
  return undefined;
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}
