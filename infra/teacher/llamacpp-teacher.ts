/**
 * The local LLM teacher on llama.cpp's own server: an OpenAI-compatible front (node:http) over the C++ server of the
 * `xllamacpp` wheel (llamacpp-process.ts), with the same request rules, errors and guarantees as the node-llama-cpp
 * teacher (llama-server.ts), which it replaces on CPU.
 *
 * Why a front and not llama.cpp's server alone: its native `n` samples every choice with the request's one seed and
 * reports usage for one choice only, it does not check the model name, and its errors are not OpenAI's. The front
 * sends each of the n choices as its own request (n = 1, seed = choiceSeed(seed, i)); the server's slots decode all
 * of them, and those of concurrent requests, together by continuous batching. So choice i is the same whatever n is
 * and whatever else was decoded next to it (checked: llama.cpp's CPU kernels give a sequence the same logits alone or
 * batched), and usage is summed here over the choices: prompt tokens once per request, completion tokens of every
 * choice.
 *
 * Sampling matches the node-llama-cpp teacher: temperature (0 = greedy), top_p, no top-k / min-p / typical-p, no
 * repeat penalty unless frequency_penalty / presence_penalty are set. `logprobs` / `top_logprobs` (≤ 20) pass
 * through per choice in OpenAI's shape (each entry also carries llama.cpp's token `id`).
 */
import http from 'node:http';
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HttpError, invalid, sendJson } from './http-common';
import {
  closeGracefully,
  createAbortables,
  createApiServer,
  listenApi,
  openAiRouter,
  readJsonBody,
  sendChatReply,
} from './chat-endpoint';
import { startLlamaCppProcess, type LlamaCppProcess } from './llamacpp-process';
import {
  choiceSeed,
  createLlamaCounters,
  DEFAULT_LLAMA_CONTEXT_SIZE,
  defaultLlamaModelPath,
  llamaStats,
  modelFingerprint,
  parseLlamaChatRequest,
  SMOLLM2_FETCH_SCRIPT,
  splitThink,
  type LlamaTeacher,
  type LlamaTeacherOptions,
  type ParsedLlamaRequest,
} from './llama-server';
import { DEFAULT_LLAMACPP_SLOTS } from '../../core/llamacpp';

const MAX_TOP_LOGPROBS = 20;

export interface LlamaCppTeacherOptions extends Omit<LlamaTeacherOptions, 'gpu' | 'parallelSequences' | 'maxInFlight'> {
  /** Slots of llama.cpp's server: choices decoded together, over all requests. Default 4. */
  slots?: number;
  /** Layers to offload to a GPU (only with a GPU build of llama.cpp). Default 0. */
  gpuLayers?: number;
}

export interface LogprobsRequest {
  logprobs: boolean;
  topLogprobs: number;
}

/** `logprobs` / `top_logprobs` as OpenAI takes them: top_logprobs 0..20, and only with logprobs: true. */
export function parseLogprobs(body: unknown): LogprobsRequest {
  const r = (body ?? {}) as Record<string, unknown>;
  const lp = r.logprobs ?? false;
  if (typeof lp !== 'boolean')
    throw invalid(`Invalid type for 'logprobs': expected a boolean.`, 'logprobs', 'invalid_type');
  const top = r.top_logprobs ?? 0;
  if (typeof top !== 'number' || !Number.isInteger(top) || top < 0 || top > MAX_TOP_LOGPROBS) {
    throw invalid(
      `Invalid 'top_logprobs': expected an integer between 0 and ${MAX_TOP_LOGPROBS}.`,
      'top_logprobs',
      'invalid_value',
    );
  }
  if (top > 0 && !lp)
    throw invalid(
      `Invalid 'top_logprobs': 'logprobs' must be true when 'top_logprobs' is set.`,
      'top_logprobs',
      'invalid_value',
    );
  return { logprobs: lp, topLogprobs: top };
}

/** The body of the upstream request for choice `index` (n = 1, its own seed). */
export function upstreamBody(
  req: ParsedLlamaRequest,
  lp: LogprobsRequest,
  index: number,
  alias: string,
): Record<string, unknown> {
  return {
    model: alias,
    messages: req.messages.map((m) => ({ role: m.role, content: m.text })),
    n: 1,
    stream: false,
    temperature: req.temperature,
    top_p: req.topP,
    top_k: 0,
    min_p: 0,
    typical_p: 1,
    repeat_penalty: 1,
    frequency_penalty: req.frequencyPenalty,
    presence_penalty: req.presencePenalty,
    seed: choiceSeed(req.seed, index),
    ...(req.maxTokens !== null ? { max_tokens: req.maxTokens } : {}),
    ...(req.stop.length > 0 ? { stop: req.stop } : {}),
    ...(lp.logprobs ? { logprobs: true, top_logprobs: lp.topLogprobs } : {}),
    cache_prompt: true,
  };
}

interface UpstreamChoice {
  finish_reason?: string;
  message?: { content?: string | null };
  logprobs?: unknown;
}
interface UpstreamCompletion {
  choices?: UpstreamChoice[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

export interface LlamaCppChoice {
  index: number;
  content: string;
  reasoningContent?: string;
  finishReason: 'stop' | 'length';
  tokens: number;
  logprobs: unknown;
}

/**
 * Sums one request's usage over its choices: the prompt once (every choice reads the same prompt), the completion
 * tokens of every choice. llama.cpp's own `n > 1` counts one choice only, which under-counts cost and progress.
 */
export function sumUsage(
  promptTokens: number,
  choices: ReadonlyArray<{ tokens: number }>,
): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  const completion = choices.reduce((s, c) => s + c.tokens, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
}

/** An upstream error as an OpenAI-style error of this server. */
function upstreamError(status: number, text: string, contextSize: number): HttpError {
  let err: { message?: string; type?: string; n_prompt_tokens?: number } = {};
  try {
    err = ((JSON.parse(text) as { error?: typeof err }).error ?? {}) as typeof err;
  } catch {
    /* not JSON */
  }
  if (err.type === 'exceed_context_size_error') {
    return invalid(
      `This model's maximum context length is ${contextSize} tokens. However, your messages resulted in ${err.n_prompt_tokens ?? 'more'} tokens. Please reduce the length of the messages.`,
      'messages',
      'context_length_exceeded',
    );
  }
  if (status >= 400 && status < 500)
    return new HttpError(400, err.message ?? text.slice(0, 500), 'invalid_request_error');
  return new HttpError(502, `llama.cpp server error ${status}: ${err.message ?? text.slice(0, 500)}`, 'server_error');
}

export async function startLlamaCppTeacher(opts: LlamaCppTeacherOptions = {}): Promise<LlamaTeacher> {
  const started = Date.now();
  const modelPath = path.resolve(opts.modelPath ?? defaultLlamaModelPath());
  if (!existsSync(modelPath)) {
    throw new Error(
      `GGUF model not found at ${modelPath}: run \`bash ${SMOLLM2_FETCH_SCRIPT}\` first (or pass modelPath)`,
    );
  }
  const host = opts.host ?? '127.0.0.1';
  const servedModel = opts.model ?? path.basename(modelPath).replace(/\.gguf$/i, '');
  const contextSize = opts.contextSize ?? DEFAULT_LLAMA_CONTEXT_SIZE;
  const slots = opts.slots ?? DEFAULT_LLAMACPP_SLOTS;
  // One server decodes all slots in one batch per step, so it gets every core of its slot (not one per context).
  const threads = opts.threads ?? Math.max(1, os.availableParallelism());
  if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be an integer >= 1, got ${slots}`);
  const log = opts.log ?? (() => undefined);
  const upstream: LlamaCppProcess = await startLlamaCppProcess({
    modelPath,
    slots,
    ctxPerSlot: contextSize,
    threads,
    gpuLayers: opts.gpuLayers ?? 0,
    alias: servedModel,
    log,
  });

  const created = Math.floor(Date.now() / 1000);
  const counters = createLlamaCounters();
  const inFlight = { now: 0, peak: 0, choicesNow: 0, queuedPeak: 0 };
  const modelObject = { id: servedModel, object: 'model', created, owned_by: 'distillery-local' };
  const fingerprint = modelFingerprint('fp_llamacpp', modelPath, contextSize);
  const abortables = createAbortables();
  let shuttingDown = false;

  async function post(pathname: string, body: unknown, signal: AbortSignal): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${upstream.url}${pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal,
      });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new HttpError(
        503,
        `llama.cpp server unreachable${upstream.exited() ? ' (it exited)' : ''}: ${(e as Error).message}`,
        'server_error',
      );
    }
    const text = await res.text();
    if (!res.ok) throw upstreamError(res.status, text, contextSize);
    return JSON.parse(text) as unknown;
  }

  async function countTokens(text: string, signal: AbortSignal): Promise<number> {
    const r = (await post('/tokenize', { content: text, add_special: false }, signal)) as { tokens?: unknown[] };
    return r.tokens?.length ?? 0;
  }

  async function generate(
    req: ParsedLlamaRequest,
    lp: LogprobsRequest,
    signal: AbortSignal,
  ): Promise<{ choices: LlamaCppChoice[]; promptTokens: number }> {
    if (shuttingDown) throw new HttpError(503, 'The server is shutting down.', 'server_error');
    inFlight.choicesNow += req.n;
    inFlight.queuedPeak = Math.max(inFlight.queuedPeak, Math.max(0, inFlight.choicesNow - slots));
    const t0 = Date.now();
    try {
      let promptTokens = 0;
      const choices = await Promise.all(
        Array.from({ length: req.n }, async (_, index): Promise<LlamaCppChoice> => {
          const r = (await post(
            '/v1/chat/completions',
            upstreamBody(req, lp, index, servedModel),
            signal,
          )) as UpstreamCompletion;
          const c = r.choices?.[0];
          if (!c) throw new HttpError(502, 'llama.cpp server returned no choice', 'server_error');
          promptTokens = r.usage?.prompt_tokens ?? promptTokens;
          let content = c.message?.content ?? '';
          let reasoningContent: string | undefined;
          if (req.reasoningFormat === 'separate') {
            const s = splitThink(content);
            content = s.content;
            reasoningContent = s.reasoning;
          }
          return {
            index,
            content,
            ...(reasoningContent !== undefined ? { reasoningContent } : {}),
            finishReason: c.finish_reason === 'length' ? 'length' : 'stop',
            tokens: r.usage?.completion_tokens ?? 0,
            logprobs: lp.logprobs ? (c.logprobs ?? null) : null,
          };
        }),
      );
      return { choices, promptTokens };
    } finally {
      inFlight.choicesNow -= req.n;
      counters.generationMs += Date.now() - t0;
    }
  }

  async function handleChat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readJsonBody(req);
    const parsed = parseLlamaChatRequest(body, servedModel);
    const lp = parseLogprobs(body);
    let reasoningTokens = 0;
    const out = await abortables.run(
      res,
      async (signal) => {
        inFlight.now++;
        inFlight.peak = Math.max(inFlight.peak, inFlight.now);
        try {
          const generated = await generate(parsed, lp, signal);
          for (const c of generated.choices)
            if (c.reasoningContent) reasoningTokens += await countTokens(c.reasoningContent, signal);
          return generated;
        } finally {
          inFlight.now--;
        }
      },
      () => counters.aborted++,
    );
    if (!out) return;
    const { choices } = out;
    const usage = {
      ...sumUsage(out.promptTokens, choices),
      completion_tokens_details: { reasoning_tokens: reasoningTokens },
    };
    counters.completions++;
    counters.choices += choices.length;
    counters.promptTokens += usage.prompt_tokens;
    counters.completionTokens += usage.completion_tokens;
    sendChatReply(res, { model: servedModel, fingerprint, choices, usage }, { ...parsed, streamLogprobs: true });
  }

  const route = openAiRouter({
    modelObject,
    apiKey: opts.apiKey,
    health: async (res) => {
      const up = await fetch(`${upstream.url}/health`)
        .then((r) => r.ok)
        .catch(() => false);
      sendJson(res, up ? 200 : 503, {
        status: up ? 'ok' : 'unavailable',
        model: servedModel,
        runtime: 'llama.cpp',
        contextSize,
        threads,
        slots,
      });
    },
    chat: handleChat,
  });
  const server = createApiServer(async (req, res) => {
    counters.requests++;
    await route(req, res);
  });
  // Generations can take minutes on a CPU: no per-request timeout on the server side.
  server.requestTimeout = 0;
  let bound: { port: number; url: string };
  try {
    bound = await listenApi(server, opts.port ?? 0, host);
  } catch (e) {
    await upstream.close();
    throw e;
  }
  const { port, url } = bound;
  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    model: servedModel,
    info: {
      modelPath,
      contextSize,
      threads,
      maxInFlight: slots,
      parallelSequences: slots,
      gpu: (opts.gpuLayers ?? 0) > 0 ? 'llama.cpp' : false,
      trainContextSize: upstream.trainContextSize,
      loadSeconds: (Date.now() - started) / 1000,
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        await closeGracefully(server, () => abortables.abortAll(new Error('server closing')));
        await upstream.close();
      })();
      return closing;
    },
    stats: () => llamaStats(counters, inFlight.peak, inFlight.queuedPeak),
  };
}
