import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A capture server (an honest test double): a real HTTP server that records every request it receives (method, path,
 * Authorization header) and answers 503, so a test can count what a refused run sent: nothing, or what exactly.
 */
export interface CaptureServer {
  /** e.g. http://127.0.0.1:PORT/v1, to use as an OpenAI-compatible baseURL. */
  url: string;
  requests: { method: string; path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

export async function startCaptureServer(host = '127.0.0.1'): Promise<CaptureServer> {
  const requests: CaptureServer['requests'] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'capture server: request recorded' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/v1`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
