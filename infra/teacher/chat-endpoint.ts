/**
 * The OpenAI-compatible surface the local teachers share (procedural, in-process llama, llama.cpp process): the
 * chat.completions request checks, the completion reply (JSON or SSE), routing with auth, and listen/close.
 * Each server keeps only what is its own: how messages are read, how choices are generated, its extra endpoints.
 */
import http from 'node:http';
import { randomBytes, randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { HttpError, invalid, readBody, sendError, sendJson, type SamplingRequest } from './http-common';

const MAX_N = 128;

export function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

export async function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  const raw = await readBody(req);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw invalid(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    );
  }
}

export const modelNotFound = (model: string) =>
  new HttpError(
    404,
    `The model \`${model}\` does not exist or you do not have access to it.`,
    'invalid_request_error',
    'model',
    'model_not_found',
  );

/** The envelope of a chat.completions body: a JSON object with a model name and a non-empty messages array. */
export function chatRequestBody(body: unknown): { r: Record<string, unknown>; model: string; messages: unknown[] } {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw invalid('The request body must be a JSON object.');
  const r = body as Record<string, unknown>;
  if (typeof r.model !== 'string' || r.model === '')
    throw invalid("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
  if (r.messages === undefined)
    throw invalid("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  if (!Array.isArray(r.messages))
    throw invalid("Invalid type for 'messages': expected an array.", 'messages', 'invalid_type');
  if (r.messages.length === 0)
    throw invalid(
      "Invalid 'messages': empty array. Expected an array with minimum length 1.",
      'messages',
      'empty_array',
    );
  return { r, model: r.model, messages: r.messages };
}

/** messages[i] as an object with its role and content (not yet checked). */
export function messageAt(m: unknown, i: number): { role: unknown; content: unknown } {
  if (!m || typeof m !== 'object')
    throw invalid(`Invalid type for 'messages[${i}]': expected an object.`, `messages[${i}]`, 'invalid_type');
  return { role: (m as { role?: unknown }).role, content: (m as { content?: unknown }).content };
}

/**
 * The text of messages[index].content: null, a string, or an array of parts whose text parts are joined;
 * `otherPart` answers for any other part (its text, or a thrown error).
 */
export function messageText(content: unknown, index: number, otherPart: (part: unknown, j: number) => string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
          const t = (part as { text?: unknown }).text;
          if (typeof t === 'string') return t;
        }
        return otherPart(part, j);
      })
      .join('');
  }
  throw invalid(`Invalid type for 'messages[${index}].content'.`, `messages[${index}].content`, 'invalid_type');
}

/** n, temperature, top_p, max(_completion)_tokens, seed and stop, in the order the checks run. */
export function parseSampling(r: Record<string, unknown>): Omit<SamplingRequest, 'model'> {
  const n = r.n ?? 1;
  if (!isInt(n) || n < 1)
    throw invalid(
      `Invalid 'n': integer below minimum value. Expected a value >= 1, but got ${JSON.stringify(n)} instead.`,
      'n',
      'integer_below_min_value',
    );
  if (n > MAX_N)
    throw invalid(
      `Invalid 'n': integer above maximum value. Expected a value <= ${MAX_N}, but got ${n} instead.`,
      'n',
      'integer_above_max_value',
    );
  const temperature = r.temperature ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
    throw invalid(`Invalid 'temperature': expected a number between 0 and 2.`, 'temperature', 'invalid_value');
  }
  const topP = r.top_p ?? 1;
  if (typeof topP !== 'number' || !Number.isFinite(topP) || topP < 0 || topP > 1) {
    throw invalid(`Invalid 'top_p': expected a number between 0 and 1.`, 'top_p', 'invalid_value');
  }
  let maxTokens: number | null = null;
  for (const key of ['max_completion_tokens', 'max_tokens'] as const) {
    const v = r[key];
    if (v === undefined || v === null) continue;
    if (!isInt(v) || v < 1) throw invalid(`Invalid '${key}': expected an integer >= 1.`, key, 'invalid_value');
    maxTokens = maxTokens === null ? v : Math.min(maxTokens, v);
  }
  let seed: number | string;
  if (r.seed === undefined || r.seed === null) seed = `random-${randomInt(2 ** 47)}`;
  else if (isInt(r.seed)) seed = r.seed;
  else throw invalid(`Invalid 'seed': expected an integer.`, 'seed', 'invalid_type');
  let stop: string[] = [];
  if (typeof r.stop === 'string') stop = [r.stop];
  else if (Array.isArray(r.stop)) {
    if (r.stop.length > 4 || !r.stop.every((s) => typeof s === 'string')) {
      throw invalid(`Invalid 'stop': expected a string or an array of at most 4 strings.`, 'stop', 'invalid_value');
    }
    stop = r.stop as string[];
  } else if (r.stop !== undefined && r.stop !== null) {
    throw invalid(`Invalid 'stop': expected a string or an array of at most 4 strings.`, 'stop', 'invalid_type');
  }
  stop = stop.filter((s) => s.length > 0);
  return { n, temperature, topP, maxTokens, seed, stop };
}

/** reasoning_format, stream and stream_options.include_usage. */
export function parseReplyFormat(r: Record<string, unknown>): {
  reasoningFormat: 'inline' | 'separate';
  stream: boolean;
  includeUsage: boolean;
} {
  const rf = r.reasoning_format;
  if (rf !== undefined && rf !== null && rf !== 'separate' && rf !== 'inline') {
    throw invalid(`Invalid 'reasoning_format': expected 'inline' or 'separate'.`, 'reasoning_format', 'invalid_value');
  }
  if (r.stream !== undefined && r.stream !== null && typeof r.stream !== 'boolean') {
    throw invalid(`Invalid 'stream': expected a boolean.`, 'stream', 'invalid_type');
  }
  const so = r.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    reasoningFormat: rf === 'separate' ? 'separate' : 'inline',
    stream: r.stream === true,
    includeUsage: !!(so && typeof so === 'object' && so.include_usage === true),
  };
}

export interface ReplyChoice {
  index: number;
  content: string;
  reasoningContent?: string;
  finishReason: string;
  /** The choice's `logprobs` field as sent (null when the model reports none). */
  logprobs?: unknown;
}

export interface ChatReply {
  model: string;
  fingerprint: string;
  choices: ReplyChoice[];
  usage: Record<string, unknown>;
}

function replyId(): { id: string; created: number } {
  return { id: `chatcmpl-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000) };
}

/** A chat.completion object. */
export function chatCompletionPayload(reply: ChatReply, at = replyId()): Record<string, unknown> {
  return {
    id: at.id,
    object: 'chat.completion',
    created: at.created,
    model: reply.model,
    system_fingerprint: reply.fingerprint,
    choices: reply.choices.map((c) => ({
      index: c.index,
      message: {
        role: 'assistant',
        content: c.content,
        ...(c.reasoningContent !== undefined ? { reasoning_content: c.reasoningContent } : {}),
        refusal: null,
      },
      logprobs: c.logprobs ?? null,
      finish_reason: c.finishReason,
    })),
    usage: reply.usage,
  };
}

/**
 * Sends a finished completion as JSON, or for `stream` as server-sent events: per choice a role chunk, content pieces,
 * a finish chunk (carrying the choice's logprobs only with `streamLogprobs`); an optional usage chunk; [DONE].
 */
export function sendChatReply(
  res: http.ServerResponse,
  reply: ChatReply,
  opts: { stream: boolean; includeUsage: boolean; streamLogprobs?: boolean },
): void {
  const at = replyId();
  const headers = { 'x-request-id': `req_${randomBytes(8).toString('hex')}`, 'openai-model': reply.model };
  if (!opts.stream) {
    sendJson(res, 200, chatCompletionPayload(reply, at), headers);
    return;
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
  const base = {
    id: at.id,
    object: 'chat.completion.chunk',
    created: at.created,
    model: reply.model,
    system_fingerprint: reply.fingerprint,
  };
  const send = (choicesPayload: unknown[], extra: Record<string, unknown> = {}) =>
    res.write(`data: ${JSON.stringify({ ...base, choices: choicesPayload, ...extra })}\n\n`);
  const pieces = (s: string) => s.match(/[\s\S]{1,16}/g) ?? [];
  for (const c of reply.choices) {
    send([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    if (c.reasoningContent !== undefined) {
      for (const p of pieces(c.reasoningContent))
        send([{ index: c.index, delta: { reasoning_content: p }, logprobs: null, finish_reason: null }]);
    }
    for (const p of pieces(c.content))
      send([{ index: c.index, delta: { content: p }, logprobs: null, finish_reason: null }]);
    const logprobs = opts.streamLogprobs ? (c.logprobs ?? null) : null;
    send([{ index: c.index, delta: {}, logprobs, finish_reason: c.finishReason }]);
  }
  if (opts.includeUsage) send([], { usage: reply.usage });
  res.end('data: [DONE]\n\n');
}

export interface OpenAiRoutes {
  /** The served model's /v1/models entry. */
  modelObject: { id: string };
  /** When set, every /v1 request needs `Authorization: Bearer <apiKey>` (else 401). */
  apiKey?: string;
  /** GET/HEAD /health (never requires auth). */
  health(res: http.ServerResponse): Promise<void> | void;
  /** POST /v1/chat/completions. */
  chat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
  /** Further /v1 endpoints, tried after chat completions: true when one answered. */
  more?(method: string, path: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
}

const methodNotAllowed = (method: string, path: string) =>
  new HttpError(405, `Method ${method} not allowed on ${path}.`, 'invalid_request_error');
const unknownUrl = (method: string, path: string) =>
  new HttpError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, 'unknown_url');

/** Routes one request: /health, then the API key check, chat completions, `more`, the model list. */
export function openAiRouter(routes: OpenAiRoutes) {
  return async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/health') {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, path);
      await routes.health(res);
      return;
    }
    if (!path.startsWith('/v1/') && path !== '/v1') throw unknownUrl(method, path);
    if (routes.apiKey !== undefined) {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      if (!m) {
        throw new HttpError(
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
          'invalid_request_error',
        );
      }
      if (m[1].trim() !== routes.apiKey)
        throw new HttpError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
    }
    if (path === '/v1/chat/completions') {
      if (method !== 'POST') throw methodNotAllowed(method, path);
      await routes.chat(req, res);
      return;
    }
    if (routes.more && (await routes.more(method, path, req, res))) return;
    if (path === '/v1/models') {
      if (method !== 'GET') throw methodNotAllowed(method, path);
      sendJson(res, 200, { object: 'list', data: [routes.modelObject] });
      return;
    }
    if (path.startsWith('/v1/models/') && method === 'GET') {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== routes.modelObject.id) throw modelNotFound(id);
      sendJson(res, 200, routes.modelObject);
      return;
    }
    throw unknownUrl(method, path);
  };
}

/** An http.Server whose failures become OpenAI-style error replies (a 500 for anything not an HttpError). */
export function createApiServer(handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>) {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) sendError(res, err);
      else
        sendError(
          res,
          new HttpError(
            500,
            `Internal server error: ${err instanceof Error ? err.message : String(err)}`,
            'server_error',
          ),
        );
    });
  });
  server.keepAliveTimeout = 5000;
  return server;
}

/** Listens on host:port (0 = ephemeral); the bound port and the client base URL ending in /v1. */
export async function listenApi(
  server: http.Server,
  port: number,
  host: string,
): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return { port: bound, url: `http://${urlHost}:${bound}/v1` };
}

/**
 * Stops accepting, closes idle sockets, runs `onClosing` (e.g. to abort generations), gives in-flight responses a
 * moment and then cuts the remaining keep-alive sockets. Resolves when the server has closed.
 */
export function closeGracefully(server: http.Server, onClosing: () => void = () => undefined): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  server.closeIdleConnections();
  onClosing();
  setTimeout(() => server.closeAllConnections(), 200).unref();
  return closed;
}

/** Generations that end early when their client disconnects or the server closes. */
export function createAbortables() {
  const active = new Set<AbortController>();
  return {
    /**
     * Runs `work` with a signal that aborts when the client goes away or on `abortAll`. An aborted run calls
     * `onAborted`, answers 503 to a client that is still there (it may retry elsewhere) and returns undefined.
     */
    async run<T extends object>(
      res: http.ServerResponse,
      work: (signal: AbortSignal) => Promise<T>,
      onAborted: () => void,
    ): Promise<T | undefined> {
      const abort = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) abort.abort(new Error('client disconnected'));
      };
      res.on('close', onClose);
      active.add(abort);
      try {
        return await work(abort.signal);
      } catch (e) {
        if (abort.signal.aborted) {
          onAborted();
          if (!res.headersSent && !res.destroyed)
            sendError(res, new HttpError(503, 'The server is shutting down; the request was aborted.', 'server_error'));
          return undefined;
        }
        throw e;
      } finally {
        active.delete(abort);
        res.off('close', onClose);
      }
    },
    abortAll(reason: Error): void {
      for (const a of active) a.abort(reason);
    },
  };
}
