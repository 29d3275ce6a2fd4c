/**
 * OpenAI-compatible HTTP server in front of the procedural teacher (node:http only).
 *
 *   POST /v1/chat/completions   chat.completion (or SSE chat.completion.chunk stream when `stream: true`); besides
 *                               the teacher, the fine-tuning API's base and fine-tuned students (student-serving.ts)
 *   GET  /v1/models             model list;  GET /v1/models/{id}
 *   GET  /health                {"status":"ok"} (never requires auth)
 *   /v1/files, /v1/batches      Files and Batch API (batch-api.ts)
 *   /v1/fine_tuning/jobs        fine-tuning API that really trains the tiny student (fine-tuning-api.ts)
 *
 * Token counts are an approximation: tokens(text) = ceil(text.length / 4) (UTF-16 code units).
 *   prompt_tokens     = tokens(all message texts joined with "\n")
 *   completion_tokens = Σ over choices of tokens(content) + tokens(reasoning_content)
 * `max_tokens` / `max_completion_tokens` truncates each choice to max_tokens × 4 characters (reasoning first, then
 * content, as reasoning models count reasoning against the budget) and reports finish_reason "length".
 * `stop` (string | string[], ≤ 4) cuts content at the first stop sequence (finish_reason "stop").
 * Extra body field `reasoning_format: "separate"` returns DeepSeek-style `message.reasoning_content`.
 * When the request has no `seed`, a random one is drawn per request (node:crypto).
 */
import http from 'node:http';
import { randomBytes, randomInt } from 'node:crypto';
import { AddressInfo } from 'node:net';
import { DEFAULT_BASE_ERROR_RATE, ReasoningFormat, proceduralTeacherRespond } from './procedural-teacher';
import { createBatchApi, createFileStore } from './batch-api';
import { createFineTuningApi } from './fine-tuning-api';
import { createStudentServing, StudentContextError, type StudentRequest } from './student-serving';
import { Semaphore } from '../../core/semaphore';
import { HttpError, invalid, readBody, sendError, sendJson } from './http-common';

export const DEFAULT_TEACHER_MODEL = 'procedural-arithmetic-teacher';
export const CHARS_PER_TOKEN = 4;
const MAX_N = 128;

export interface TeacherServerOptions {
  /** Batch API: how long a submitted batch waits before it is processed (a real provider takes hours). */
  batchDelayMs?: number;
  /** Fine-tuning API: where jobs keep their data, checkpoints and models (default: a new directory under the OS temp dir). */
  fineTuningDir?: string;
  /** Fine-tuning API: how long a validated job stays queued before it trains. Default 0. */
  fineTuningDelayMs?: number;
  /** Fine-tuning API: torch threads of the trainer. Default min(4, cores). */
  fineTuningThreads?: number;
  /** 0 (default) = ephemeral port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Fixed latency added to each chat completion (ms, inside the in-flight slot). Default 0. */
  latencyMs?: number;
  /** Max concurrently processed chat completions; further ones queue (FIFO). Default unlimited. */
  maxInFlight?: number;
  /** Served model name. Default 'procedural-arithmetic-teacher'. */
  model?: string;
  /** When set, every /v1 request needs `Authorization: Bearer <apiKey>` (else 401). */
  apiKey?: string;
  /** Base per-step error rate of the procedural teacher (p_step = min(0.5, base·T·top_p)). Default 0.08. */
  baseErrorRate?: number;
  /** Vary phrasing at temperature > 0 (default true). */
  styleVariation?: boolean;
  /** Further models to serve: model name → a tiny student's model dir (model.onnx + config.json), with logprobs. */
  students?: Record<string, string>;
}

export interface TeacherServerStats {
  /** HTTP requests received (all paths). */
  requests: number;
  /** Chat completion requests answered successfully. */
  completions: number;
  /** Choices generated. */
  choices: number;
  /** Peak number of chat completions processed concurrently (≤ maxInFlight). */
  inFlightPeak: number;
  /** Peak number of chat completions waiting for a slot. */
  queuedPeak: number;
  /** Batches submitted through the Batch API. */
  batchesCreated: number;
  /** Jobs created through the fine-tuning API. */
  fineTuningJobsCreated: number;
}

export interface TeacherServer {
  /** Base URL ending in /v1, e.g. http://127.0.0.1:40123/v1 */
  url: string;
  port: number;
  model: string;
  close(): Promise<void>;
  stats(): TeacherServerStats;
  /** Where a succeeded fine-tuning job's model directory is, by job id or fine-tuned model name. */
  fineTunedModelDir(jobOrModel: string): string | undefined;
}

/** Approximate token count: ceil(chars / 4). */
export function approxTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

interface ParsedRequest extends StudentRequest {
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
  reasoningFormat: ReasoningFormat;
}

function messageText(content: unknown, index: number): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, j) => {
        if (part && typeof part === 'object' && (part as { type?: unknown }).type === 'text') {
          const t = (part as { text?: unknown }).text;
          if (typeof t === 'string') return t;
        }
        if (part && typeof part === 'object' && typeof (part as { type?: unknown }).type === 'string') return '';
        throw invalid(`Invalid content part at messages[${index}].content[${j}].`, `messages[${index}].content`);
      })
      .join('');
  }
  throw invalid(`Invalid type for 'messages[${index}].content'.`, `messages[${index}].content`, 'invalid_type');
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function parseChatRequest(
  body: unknown,
  servedModel: string,
  alsoServes: (model: string) => boolean = () => false,
): ParsedRequest {
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
  const texts: string[] = [];
  let prompt: string | null = null;
  r.messages.forEach((m, i) => {
    if (!m || typeof m !== 'object')
      throw invalid(`Invalid type for 'messages[${i}]': expected an object.`, `messages[${i}]`, 'invalid_type');
    const role = (m as { role?: unknown }).role;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw invalid(`Invalid value for 'messages[${i}].role'.`, `messages[${i}].role`, 'invalid_value');
    }
    const text = messageText((m as { content?: unknown }).content, i);
    texts.push(text);
    if (role === 'user') prompt = text;
  });

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
  const rf = r.reasoning_format;
  if (rf !== undefined && rf !== null && rf !== 'separate' && rf !== 'inline') {
    throw invalid(`Invalid 'reasoning_format': expected 'inline' or 'separate'.`, 'reasoning_format', 'invalid_value');
  }
  if (r.stream !== undefined && r.stream !== null && typeof r.stream !== 'boolean') {
    throw invalid(`Invalid 'stream': expected a boolean.`, 'stream', 'invalid_type');
  }
  if (r.model !== servedModel && !alsoServes(r.model)) {
    throw new HttpError(
      404,
      `The model \`${r.model}\` does not exist or you do not have access to it.`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
  if (r.logprobs !== undefined && r.logprobs !== null && typeof r.logprobs !== 'boolean') {
    throw invalid(`Invalid 'logprobs': expected a boolean.`, 'logprobs', 'invalid_type');
  }
  const tl = r.top_logprobs;
  if (tl !== undefined && tl !== null && (!isInt(tl) || tl < 0 || tl > 20)) {
    throw invalid(`Invalid 'top_logprobs': expected an integer between 0 and 20.`, 'top_logprobs', 'invalid_value');
  }
  if (isInt(tl) && r.logprobs !== true)
    throw invalid(`'top_logprobs' requires 'logprobs' to be true.`, 'top_logprobs', 'invalid_value');
  const so = r.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    ...(r.logprobs === true ? { topLogprobs: isInt(tl) ? tl : 0 } : {}),
    model: r.model,
    prompt: prompt ?? '',
    promptTokens: approxTokens(texts.join('\n')),
    n,
    temperature,
    topP,
    maxTokens,
    seed,
    stop,
    stream: r.stream === true,
    includeUsage: !!(so && typeof so === 'object' && so.include_usage === true),
    reasoningFormat: rf === 'separate' ? 'separate' : 'inline',
  };
}

interface GeneratedChoice {
  index: number;
  content: string;
  reasoningContent?: string;
  finishReason: 'stop' | 'length';
  tokens: number;
}

function applyStop(text: string, stop: string[]): { text: string; stopped: boolean } {
  let cut = -1;
  for (const s of stop) {
    const i = text.indexOf(s);
    if (i >= 0 && (cut < 0 || i < cut)) cut = i;
  }
  return cut >= 0 ? { text: text.slice(0, cut), stopped: true } : { text, stopped: false };
}

function generateChoice(req: ParsedRequest, index: number, opts: TeacherServerOptions): GeneratedChoice {
  const out = proceduralTeacherRespond({
    prompt: req.prompt,
    temperature: req.temperature,
    topP: req.topP,
    seed: req.seed,
    choiceIndex: index,
    reasoningFormat: req.reasoningFormat,
    baseErrorRate: opts.baseErrorRate ?? DEFAULT_BASE_ERROR_RATE,
    styleVariation: opts.styleVariation,
  });
  let reasoning = out.reasoningContent;
  let content = applyStop(out.content, req.stop).text;
  let finishReason: 'stop' | 'length' = 'stop';
  if (req.maxTokens !== null) {
    let budget = req.maxTokens * CHARS_PER_TOKEN;
    if (reasoning !== undefined) {
      if (reasoning.length > budget) {
        reasoning = reasoning.slice(0, budget);
        finishReason = 'length';
      }
      budget -= reasoning.length;
    }
    if (content.length > budget) {
      content = content.slice(0, budget);
      finishReason = 'length';
    }
  }
  const tokens = approxTokens(content) + (reasoning !== undefined ? approxTokens(reasoning) : 0);
  return { index, content, ...(reasoning !== undefined ? { reasoningContent: reasoning } : {}), finishReason, tokens };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startTeacherServer(opts: TeacherServerOptions = {}): Promise<TeacherServer> {
  const model = opts.model ?? DEFAULT_TEACHER_MODEL;
  const host = opts.host ?? '127.0.0.1';
  const latencyMs = Math.max(0, opts.latencyMs ?? 0);
  const maxInFlight =
    opts.maxInFlight && opts.maxInFlight > 0 ? Math.floor(opts.maxInFlight) : Number.POSITIVE_INFINITY;
  const sem = new Semaphore(maxInFlight);
  const created = Math.floor(Date.now() / 1000);
  const counters = { requests: 0, completions: 0, choices: 0 };

  const modelObject = { id: model, object: 'model', created, owned_by: 'distillery' };

  async function handleChat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      );
    }
    await answerChat(body, res);
  }

  /** One chat completion: to `res` as JSON or SSE, or (res = null, for the Batch API) returned as the JSON body. */
  async function answerChat(
    body: unknown,
    res: http.ServerResponse | null,
  ): Promise<Record<string, unknown> | undefined> {
    const parsed = parseChatRequest(body, model, (m) => !!opts.students?.[m] || fineTuning.serves(m));
    await sem.acquire();
    let choices: GeneratedChoice[];
    try {
      if (latencyMs > 0) await sleep(latencyMs);
      choices =
        parsed.model === model
          ? Array.from({ length: parsed.n }, (_, i) => generateChoice(parsed, i, opts))
          : await studentChoices(parsed);
    } finally {
      sem.release();
    }
    counters.completions++;
    counters.choices += choices.length;
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const completionTokens = choices.reduce((s, c) => s + c.tokens, 0);
    const reasoningTokens = choices.reduce(
      (s, c) => s + (c.reasoningContent !== undefined ? approxTokens(c.reasoningContent) : 0),
      0,
    );
    const usage = {
      prompt_tokens: parsed.promptTokens,
      completion_tokens: completionTokens,
      total_tokens: parsed.promptTokens + completionTokens,
      completion_tokens_details: { reasoning_tokens: reasoningTokens },
    };
    const headers = { 'x-request-id': `req_${randomBytes(8).toString('hex')}`, 'openai-model': parsed.model };

    if (!parsed.stream || !res) {
      const payload = {
        id,
        object: 'chat.completion',
        created: createdAt,
        model: parsed.model,
        system_fingerprint: 'fp_procedural_v1',
        choices: choices.map((c) => ({
          index: c.index,
          message: {
            role: 'assistant',
            content: c.content,
            ...(c.reasoningContent !== undefined ? { reasoning_content: c.reasoningContent } : {}),
            refusal: null,
          },
          // Only the ONNX students have a distribution to report; the procedural teacher has none (logprobs: null).
          logprobs: (c as { logprobs?: unknown }).logprobs
            ? { content: (c as { logprobs?: unknown }).logprobs, refusal: null }
            : null,
          finish_reason: c.finishReason,
        })),
        usage,
      };
      if (!res) return payload;
      sendJson(res, 200, payload, headers);
      return;
    }

    // Server-sent events: per choice a role chunk, content pieces, a finish chunk; optional usage chunk; [DONE].
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      ...headers,
    });
    const base = {
      id,
      object: 'chat.completion.chunk',
      created: createdAt,
      model: parsed.model,
      system_fingerprint: 'fp_procedural_v1',
    };
    const send = (choicesPayload: unknown[], extra: Record<string, unknown> = {}) =>
      res.write(`data: ${JSON.stringify({ ...base, choices: choicesPayload, ...extra })}\n\n`);
    const pieces = (s: string) => s.match(/[\s\S]{1,16}/g) ?? [];
    for (const c of choices) {
      send([{ index: c.index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
      if (c.reasoningContent !== undefined) {
        for (const p of pieces(c.reasoningContent))
          send([{ index: c.index, delta: { reasoning_content: p }, logprobs: null, finish_reason: null }]);
      }
      for (const p of pieces(c.content))
        send([{ index: c.index, delta: { content: p }, logprobs: null, finish_reason: null }]);
      send([{ index: c.index, delta: {}, logprobs: null, finish_reason: c.finishReason }]);
    }
    if (parsed.includeUsage) send([], { usage });
    res.end('data: [DONE]\n\n');
    return undefined;
  }

  /** A fine-tuned (or base) student of the fine-tuning API answers: see student-serving.ts. */
  async function studentChoices(parsed: ParsedRequest): Promise<GeneratedChoice[]> {
    try {
      const choices = await students.complete(parsed);
      if (!choices)
        throw new HttpError(
          404,
          `The model \`${parsed.model}\` does not exist or you do not have access to it.`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
      return choices;
    } catch (err) {
      if (err instanceof StudentContextError)
        throw new HttpError(400, err.message, 'invalid_request_error', 'messages', 'context_length_exceeded');
      throw err;
    }
  }

  const files = createFileStore();
  const batches = createBatchApi({
    answer: (body) => answerChat(body, null) as Promise<Record<string, unknown>>,
    processDelayMs: opts.batchDelayMs ?? 200,
    files,
  });
  const fineTuning = createFineTuningApi({
    files,
    dir: opts.fineTuningDir,
    startDelayMs: opts.fineTuningDelayMs,
    threads: opts.fineTuningThreads,
  });
  const students = createStudentServing(async (m) => opts.students?.[m] ?? fineTuning.servedModelDir(m));

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    counters.requests++;
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (path === '/health') {
      if (method !== 'GET' && method !== 'HEAD')
        throw new HttpError(405, `Method ${method} not allowed on ${path}.`, 'invalid_request_error');
      sendJson(res, 200, { status: 'ok', model });
      return;
    }
    if (!path.startsWith('/v1/') && path !== '/v1') {
      throw new HttpError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, 'unknown_url');
    }
    if (opts.apiKey !== undefined) {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer\s+(.+)$/i.exec(auth);
      if (!m) {
        throw new HttpError(
          401,
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
          'invalid_request_error',
          null,
          null,
        );
      }
      if (m[1].trim() !== opts.apiKey) {
        throw new HttpError(401, 'Incorrect API key provided.', 'invalid_request_error', null, 'invalid_api_key');
      }
    }
    if (path === '/v1/chat/completions') {
      if (method !== 'POST')
        throw new HttpError(405, `Method ${method} not allowed on ${path}.`, 'invalid_request_error');
      await handleChat(req, res);
      return;
    }
    if (await batches.handle(method, path, req, res)) return;
    if (await fineTuning.handle(method, path, req, res)) return;
    if (path === '/v1/models') {
      if (method !== 'GET')
        throw new HttpError(405, `Method ${method} not allowed on ${path}.`, 'invalid_request_error');
      sendJson(res, 200, { object: 'list', data: [modelObject] });
      return;
    }
    if (path.startsWith('/v1/models/') && method === 'GET') {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== model)
        throw new HttpError(
          404,
          `The model \`${id}\` does not exist or you do not have access to it.`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
      sendJson(res, 200, modelObject);
      return;
    }
    throw new HttpError(404, `Invalid URL (${method} ${path})`, 'invalid_request_error', null, 'unknown_url');
  }

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

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closing: Promise<void> | null = null;

  return {
    url: `http://${urlHost}:${port}/v1`,
    port,
    model,
    close() {
      if (!closing) {
        const httpClosed = new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          server.closeIdleConnections();
          // Give in-flight responses a moment, then cut remaining keep-alive sockets.
          setTimeout(() => server.closeAllConnections(), 200).unref();
        });
        closing = Promise.all([httpClosed, fineTuning.close(), students.close()]).then(() => undefined);
      }
      return closing;
    },
    stats() {
      return {
        ...counters,
        inFlightPeak: sem.peakActive,
        queuedPeak: sem.peakWaiting,
        batchesCreated: batches.created(),
        fineTuningJobsCreated: fineTuning.created(),
      };
    },
    fineTunedModelDir: (jobOrModel) => fineTuning.modelDir(jobOrModel),
  };
}
