import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP hop between a client and a server that a test can cut like a network: cut()
 * resets every open connection and leaves new ones hanging (connected, nothing passes, as
 * behind a dead link); restore() lets the hanging ones through and forwards new ones again.
 * halfOpen() resets the clients' end of every open connection and leaves the servers' end
 * open, with nothing passing: what a server sees of a client whose radio dropped.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private readonly hanging = new Set<Socket>();
  /** The client end of each forwarded connection. */
  private readonly clients = new Set<Socket>();
  private isCut = false;
  private frozen = false;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => (this.isCut ? this.hang(client) : this.forward(client)));
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get cut(): boolean {
    return this.isCut;
  }

  cutOff(): void {
    this.isCut = true;
    for (const s of this.open) s.destroy();
  }

  halfOpen(): void {
    this.isCut = true;
    this.frozen = true;
    for (const s of this.open) {
      s.unpipe();
      s.pause();
    }
    for (const c of this.clients) c.destroy();
  }

  restore(): void {
    this.isCut = false;
    this.frozen = false;
    for (const client of this.hanging) this.forward(client);
    this.hanging.clear();
  }

  async close(): Promise<void> {
    for (const s of [...this.open, ...this.hanging]) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** What the client sent waits in the socket, as it would in a router's queue. */
  private hang(client: Socket): void {
    client.pause();
    this.hanging.add(client);
    client.once('close', () => this.hanging.delete(client));
    client.on('error', () => {});
  }

  private forward(client: Socket): void {
    const server = connect(this.targetPort, '127.0.0.1');
    this.clients.add(client);
    client.once('close', () => this.clients.delete(client));
    for (const [a, b] of [
      [client, server],
      [server, client],
    ] as const) {
      this.open.add(a);
      a.pipe(b);
      a.once('close', () => {
        this.open.delete(a);
        if (!this.frozen) b.destroy();
      });
      a.on('error', () => a.destroy());
    }
    client.resume();
  }
}
