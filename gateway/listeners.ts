import { unwatchFile, watchFile } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { readSettingFile } from '../shared/config.js';
import { GuardedConnection, type GuardLimits, type GuardViolation } from './packet-guard.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** The fleet CA: client certificates must chain to it. */
  ca: string;
  /** Revocation list from `scripts/pki.sh revoke`; the gateway checks serials against it (see Gateway). */
  crl?: string;
}

export interface ListenerOptions {
  host: string;
  port: number;
  /** Share the main port with other processes (SO_REUSEPORT): the kernel spreads connections over them. */
  reusePort: boolean;
  /** With TLS files the main listener speaks mqtts and asks every client for a certificate. */
  tls?: TlsFiles;
  /** A second, plain listener for cloud services (-1: none); vehicles are refused there in mtls mode. */
  servicePort: number;
  serviceHost: string;
  limits: GuardLimits;
  /** The guard ended a connection. */
  onViolation: (conn: GuardedConnection, reason: GuardViolation, detail: string) => void;
  /** A TLS handshake failed, so MQTT never started. */
  onTlsFailure: (socket: Socket, detail: string) => void;
  /** A TLS file changed and was read again (or could not be). */
  onTlsReload: (err?: Error) => void;
}

/** The gateway's sockets: each connection passes through the packet guard before aedes sees it. */
export class Listeners {
  private main?: Server | TlsServer;
  private service?: Server;
  private readonly watched: string[] = [];
  private open = 0;

  constructor(private readonly opts: ListenerOptions) {}

  /** Connections open on every listener, authenticated or not (a TLS handshake under way counts too). */
  get openConnections(): number {
    return this.open;
  }

  async start(handle: (conn: Duplex) => void): Promise<void> {
    const { opts } = this;
    const accept = (socket: Socket) => {
      const conn: GuardedConnection = new GuardedConnection(socket, opts.limits, (reason, detail) =>
        opts.onViolation(conn, reason, detail),
      );
      handle(conn);
    };
    if (opts.tls) {
      const tls = opts.tls;
      // Certificates are checked but not enforced by TLS, so that a refused device gets a CONNACK that says why.
      // The revocation list is not given to TLS either: OpenSSL then fails a certificate of a foreign CA
      // named like ours with a reset, and a self-signed one for want of a CRL; the gateway checks serials itself.
      const server = createTlsServer(
        {
          ...readTls(tls),
          requestCert: true,
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
          handshakeTimeout: opts.limits.connectTimeoutMs,
        },
        accept,
      );
      server.on('tlsClientError', (err, socket) => opts.onTlsFailure(socket, err.message));
      // A renewed server certificate or a new revocation list applies to the next handshake, without a restart.
      for (const file of [tls.cert, tls.key, tls.ca, tls.crl].filter((f): f is string => f !== undefined)) {
        watchFile(file, { interval: 1000 }, () => {
          try {
            server.setSecureContext(readTls(tls));
            opts.onTlsReload();
          } catch (err) {
            opts.onTlsReload(err as Error);
          }
        });
        this.watched.push(file);
      }
      this.main = server;
    } else {
      this.main = createTcpServer(accept);
    }
    this.count(this.main);
    await listenOn(this.main, opts.port, opts.host, opts.reusePort);
    if (opts.servicePort >= 0) {
      this.service = createTcpServer(accept);
      this.count(this.service);
      await listenOn(this.service, opts.servicePort, opts.serviceHost, opts.reusePort);
    }
  }

  get port(): number {
    return portOf(this.main) ?? this.opts.port;
  }

  get servicePort(): number | undefined {
    return portOf(this.service);
  }

  /** Every socket from its first byte, before TLS or MQTT: a connection that has not authenticated yet takes room too. */
  private count(server: Server): void {
    server.on('connection', (socket: Socket) => {
      this.open++;
      socket.once('close', () => this.open--);
    });
  }

  /** Stops accepting; resolves once the existing connections are gone (the broker closes them). */
  closed(): Promise<void> {
    for (const f of this.watched) unwatchFile(f);
    const close = (s?: Server) => new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
    return Promise.all([close(this.main), close(this.service)]).then(() => undefined);
  }
}

/** One missing at start stops the gateway as a configuration error naming the setting; at a reload it is logged. */
function readTls(files: TlsFiles): SecureContextOptions {
  return {
    cert: readSettingFile('tlsCert', files.cert),
    key: readSettingFile('tlsKey', files.key),
    ca: readSettingFile('tlsCa', files.ca),
  };
}

function listenOn(server: Server, port: number, host: string, reusePort = false): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // Exclusive: a worker of `fleet gateway --workers` binds its own socket rather than asking the primary for one.
    server.listen({ port, host, reusePort, exclusive: reusePort }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function portOf(server?: Server): number | undefined {
  const addr = server?.address();
  return typeof addr === 'object' && addr ? addr.port : undefined;
}
