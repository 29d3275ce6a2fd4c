import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fault-injecting HTTP proxy for an OpenAI-compatible endpoint: an honest test tool, not a teacher. Each request
 * gets a fault from the plan (by its sequence number), so tests can replay 429 storms, 5xx bursts, hangs, resets,
 * truncated JSON and short `choices` against the real client and the real pipeline.
 */
export type Fault =
  'none' | 'rate_limit' | 'server_error' | 'unavailable' | 'hang' | 'reset' | 'truncated_json' | 'fewer_choices';

export interface FaultProxy {
  url: string;
  stats: () => Record<Fault, number> & { requests: number };
  close(): Promise<void>;
}

export async function startFaultProxy(opts: {
  upstream: string;
  plan: (requestIndex: number) => Fault;
  retryAfterSeconds?: number;
}): Promise<FaultProxy> {
  const upstream = new URL(opts.upstream.replace(/\/v1\/?$/, '/'));
  const counts: Record<Fault, number> = {
    none: 0,
    rate_limit: 0,
    server_error: 0,
    unavailable: 0,
    hang: 0,
    reset: 0,
    truncated_json: 0,
    fewer_choices: 0,
  };
  let requests = 0;
  const hung = new Set<http.ServerResponse>();

  const errorBody = (message: string, type: string) =>
    JSON.stringify({ error: { message, type, param: null, code: null } });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fault = req.url?.includes('/chat/completions') ? opts.plan(requests++) : 'none';
      counts[fault] += 1;
      switch (fault) {
        case 'rate_limit':
          res.writeHead(429, {
            'content-type': 'application/json',
            'retry-after': String(opts.retryAfterSeconds ?? 1),
          });
          return res.end(errorBody('Rate limit reached (injected)', 'rate_limit_error'));
        case 'server_error':
          res.writeHead(500, { 'content-type': 'application/json' });
          return res.end(errorBody('Internal error (injected)', 'server_error'));
        case 'unavailable':
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end(errorBody('Service unavailable (injected)', 'server_error'));
        case 'hang':
          hung.add(res);
          res.on('close', () => hung.delete(res));
          return; // never answers; the client's timeout must fire
        case 'reset':
          return req.socket.destroy();
      }
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: upstream.host },
        },
        (up) => {
          const body: Buffer[] = [];
          up.on('data', (c: Buffer) => body.push(c));
          up.on('end', () => {
            let text = Buffer.concat(body).toString('utf8');
            if (fault === 'truncated_json') text = text.slice(0, Math.floor(text.length / 2));
            if (fault === 'fewer_choices' && up.statusCode === 200) {
              const parsed = JSON.parse(text) as { choices: unknown[] };
              if (parsed.choices.length > 1)
                parsed.choices = parsed.choices.slice(0, Math.ceil(parsed.choices.length / 2));
              text = JSON.stringify(parsed);
            }
            const headers = { ...up.headers };
            delete headers['content-length'];
            delete headers['transfer-encoding'];
            res.writeHead(up.statusCode ?? 502, headers);
            res.end(text);
          });
        },
      );
      forward.on('error', () => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(errorBody('upstream unreachable', 'server_error'));
      });
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    stats: () => ({ ...counts, requests }),
    close: async () => {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
