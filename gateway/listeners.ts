import { unwatchFile, watchFile } from 'node:fs';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { readSettingFile } from '../shared/config.js';
import { GuardedConnection } from './packet-guard.js';

export interface TlsFiles {
  cert: string;
  key: string;
  /** The fleet CA: client certificates must chain to it. */
  ca: string;
  /** Revocation list from `scripts/pki.sh revoke`; re-read when it changes. */
  crl?: string;
}

export interface ListenerOptions {
  host: string;
  port: number;
  /** With TLS files the main listener speaks mqtts and asks every client for a certificate. */
  tls?: TlsFiles;
  /** A second, plain listener for cloud services (-1: none); vehicles are refused there in mtls mode. */
  servicePort: number;
  serviceHost: string;
  maxPacketBytes: number;
  onOversize: (socket: Socket, detail: string) => void;
  onTlsReload: (err?: Error) => void;
}

/** The gateway's sockets: each connection passes through the packet guard before aedes sees it. */
export class Listeners {
  private main?: Server | TlsServer;
  private service?: Server;
  private readonly watched: string[] = [];

  constructor(private readonly opts: ListenerOptions) {}

  async start(handle: (conn: Duplex) => void): Promise<void> {
    const { opts } = this;
    const accept = (socket: Socket) => handle(new GuardedConnection(socket, opts.maxPacketBytes, (detail) => opts.onOversize(socket, detail)));
    if (opts.tls) {
      const tls = opts.tls;
      // Certificates are checked but not enforced by TLS, so that a refused device gets a CONNACK that says why.
      const server = createTlsServer({ ...readTls(tls), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, accept);
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
    await listenOn(this.main, opts.port, opts.host);
    if (opts.servicePort >= 0) {
      this.service = createTcpServer(accept);
      await listenOn(this.service, opts.servicePort, opts.serviceHost);
    }
  }

  get port(): number {
    return portOf(this.main) ?? this.opts.port;
  }

  get servicePort(): number | undefined {
    return portOf(this.service);
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
    ...(files.crl ? { crl: readSettingFile('tlsCrl', files.crl) } : {}),
  };
}

function listenOn(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function portOf(server?: Server): number | undefined {
  const addr = server?.address();
  return typeof addr === 'object' && addr ? addr.port : undefined;
}
