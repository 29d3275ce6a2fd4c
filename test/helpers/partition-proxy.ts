import * as net from 'node:net';

/**
 * A TCP forwarder that can cut a client off from its server without closing anything (an honest test double for a
 * network partition): while partitioned, bytes stay where they are in both directions and new connections wait;
 * after `heal()` everything flows again. A worker behind it keeps running its activities while the server hears
 * nothing from it, as a worker on the far side of a real partition does.
 */
export interface PartitionProxy {
  /** host:port to give the client instead of the server's. */
  address: string;
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startPartitionProxy(upstream: string): Promise<PartitionProxy> {
  const [host, port] = [
    upstream.slice(0, upstream.lastIndexOf(':')),
    Number(upstream.slice(upstream.lastIndexOf(':') + 1)),
  ];
  let cut = false;
  const pairs = new Set<{ client: net.Socket; server: net.Socket | null }>();
  const waiting: (() => void)[] = [];

  const connect = (pair: { client: net.Socket; server: net.Socket | null }) => {
    const server = net.connect(port, host);
    pair.server = server;
    const drop = () => {
      pair.client.destroy();
      server.destroy();
      pairs.delete(pair);
    };
    server.on('error', drop).on('close', drop);
    pair.client.on('error', drop).on('close', drop);
    pair.client.pipe(server);
    server.pipe(pair.client);
  };

  const proxy = net.createServer((client) => {
    const pair = { client, server: null as net.Socket | null };
    pairs.add(pair);
    if (cut) {
      client.pause();
      waiting.push(() => connect(pair));
    } else connect(pair);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port: own } = proxy.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    partition: () => {
      cut = true;
      for (const { client, server } of pairs) {
        if (!server) continue;
        // unpiped streams stop reading: what is in flight stays in the socket buffers
        client.unpipe(server);
        server.unpipe(client);
        client.pause();
        server.pause();
      }
    },
    heal: () => {
      cut = false;
      for (const { client, server } of pairs) {
        if (!server) continue;
        client.pipe(server);
        server.pipe(client);
      }
      for (const go of waiting.splice(0)) go();
    },
    close: async () => {
      for (const { client, server } of pairs) {
        client.destroy();
        server?.destroy();
      }
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
