import { createHash, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/**
 * A codec server for the Temporal Web UI (Settings → Codec Server): the UI posts payloads to /decode (and
 * /encode when starting workflows or sending signals) and shows the result, so people who can reach this server
 * see decrypted payloads while the Temporal server only ever stores ciphertext. Payloads travel as proto3 JSON
 * ({metadata: {k: base64}, data: base64}).
 *
 * Whoever can call /decode reads every payload, so each request must carry `Authorization: Bearer <token>`, CORS
 * headers go only to the configured Web UI origins (a page elsewhere cannot read the answers), and request bodies are
 * capped.
 */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  port?: number;
  host?: string;
  /** The Web UI origins (scheme://host:port, exact) that get CORS headers. Never '*'. */
  allowOrigins: string[];
  /** The bearer token every /encode and /decode request must carry. */
  token: string;
  /** Largest request body; larger ones get 413. Default 8 MiB. */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
const MIN_TOKEN_CHARS = 16;

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
  ),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function startCodecServer(opts: CodecServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  if (!opts.token || opts.token.length < MIN_TOKEN_CHARS)
    throw new Error(`codec server: a bearer token of at least ${MIN_TOKEN_CHARS} characters is required`);
  if (
    !opts.allowOrigins.length ||
    opts.allowOrigins.some((o) => o.trim() === '*' || !/^https?:\/\/[^/\s]+$/.test(o.trim()))
  ) {
    throw new Error(
      `codec server: allowed origins must be the Web UI's scheme://host[:port], not "*" (got ${JSON.stringify(opts.allowOrigins)})`,
    );
  }
  const origins = new Set(opts.allowOrigins.map((o) => o.trim()));
  const wanted = digest(opts.token);
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const authorized = (req: http.IncomingMessage) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return !!m && timingSafeEqual(digest(m[1]!), wanted);
  };

  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    const cors: Record<string, string> =
      origin && origins.has(origin)
        ? {
            'access-control-allow-origin': origin,
            'access-control-allow-credentials': 'true',
            'access-control-allow-methods': 'POST, OPTIONS',
            'access-control-allow-headers': 'content-type, x-namespace, authorization',
            vary: 'origin',
          }
        : { vary: 'origin' };
    const reply = (status: number, body?: unknown, extra: Record<string, string> = {}) => {
      res.writeHead(status, {
        ...cors,
        ...extra,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') return reply(origin && origins.has(origin) ? 204 : 403);
    const route = req.url?.split('?')[0];
    if (req.method !== 'POST' || (route !== '/encode' && route !== '/decode')) return reply(404);
    if (!authorized(req)) {
      req.resume();
      return reply(401, { error: 'a valid Authorization: Bearer token is required' }, { 'www-authenticate': 'Bearer' });
    }
    const tooLarge = () => {
      reply(413, { error: `request body over ${maxBody} bytes` }, { connection: 'close' });
      // Stop reading: what is still on its way is dropped with the connection.
      res.once('finish', () => req.destroy());
    };
    if (Number(req.headers['content-length'] ?? 0) > maxBody) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > maxBody) {
        refused = true;
        chunks.length = 0;
        tooLarge();
        return;
      }
      chunks.push(c);
    });
    req.on('end', async () => {
      if (refused) return;
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { payloads?: JsonPayload[] };
        const payloads = (body.payloads ?? []).map(fromJson);
        const out = route === '/encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
        reply(200, { payloads: out.map(toJson) });
      } catch (err) {
        reply(400, { error: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
