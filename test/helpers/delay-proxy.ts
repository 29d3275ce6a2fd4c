import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A delaying HTTP forwarder in front of an OpenAI-compatible endpoint (an honest test double for slow responses):
 * chat request i waits delayFor(i) ms before it is forwarded; everything else goes through at once.
 */
export interface DelayProxy {
  url: string;
  requests(): number;
  close(): Promise<void>;
}

export async function startDelayProxy(
  upstream: string,
  delayFor: (requestIndex: number) => number,
): Promise<DelayProxy> {
  const up = new URL(upstream.replace(/\/v1\/?$/, '/'));
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delay = req.url?.includes('/chat/completions') ? delayFor(n++) : 0;
      const timer = setTimeout(() => {
        const fwd = http.request(
          {
            host: up.hostname,
            port: up.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: up.host },
          },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        fwd.on('error', () => {
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
          res.end('{"error":{"message":"upstream unreachable","type":"server_error"}}');
        });
        fwd.end(Buffer.concat(chunks));
      }, delay);
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests: () => n,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
