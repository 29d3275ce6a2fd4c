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
import type http from 'node:http';
import { DEFAULT_BASE_ERROR_RATE, ReasoningFormat, proceduralTeacherRespond } from './procedural-teacher';
import { createBatchApi, createFileStore } from './batch-api';
import { createFineTuningApi } from './fine-tuning-api';
import { createStudentServing, StudentContextError, type StudentRequest } from './student-serving';
import { Semaphore } from '../../core/semaphore';
import { HttpError, invalid, sendJson } from './http-common';
import {
  chatCompletionPayload,
  chatRequestBody,
  closeGracefully,
  createApiServer,
  isInt,
  listenApi,
  messageAt,
  messageText,
  modelNotFound,
  openAiRouter,
  parseReplyFormat,
  parseSampling,
  readJsonBody,
  sendChatReply,
  type ChatReply,
} from './chat-endpoint';

export const DEFAULT_TEACHER_MODEL = 'procedural-arithmetic-teacher';
export const CHARS_PER_TOKEN = 4;

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

/** Parts other than text (images, audio…) are accepted and read as no text: the procedural teacher reads only text. */
function skipTypedPart(part: unknown, i: number, j: number): string {
  if (part && typeof part === 'object' && typeof (part as { type?: unknown }).type === 'string') return '';
  throw invalid(`Invalid content part at messages[${i}].content[${j}].`, `messages[${i}].content`);
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

function parseChatRequest(
  body: unknown,
  servedModel: string,
  alsoServes: (model: string) => boolean = () => false,
): ParsedRequest {
  const { r, model, messages } = chatRequestBody(body);
  const texts: string[] = [];
  let prompt: string | null = null;
  messages.forEach((m, i) => {
    const { role, content } = messageAt(m, i);
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw invalid(`Invalid value for 'messages[${i}].role'.`, `messages[${i}].role`, 'invalid_value');
    }
    const text = messageText(content, i, (part, j) => skipTypedPart(part, i, j));
    texts.push(text);
    if (role === 'user') prompt = text;
  });
  const sampling = parseSampling(r);
  const format = parseReplyFormat(r);
  if (model !== servedModel && !alsoServes(model)) throw modelNotFound(model);
  if (r.logprobs !== undefined && r.logprobs !== null && typeof r.logprobs !== 'boolean') {
    throw invalid(`Invalid 'logprobs': expected a boolean.`, 'logprobs', 'invalid_type');
  }
  const tl = r.top_logprobs;
  if (tl !== undefined && tl !== null && (!isInt(tl) || tl < 0 || tl > 20)) {
    throw invalid(`Invalid 'top_logprobs': expected an integer between 0 and 20.`, 'top_logprobs', 'invalid_value');
  }
  if (isInt(tl) && r.logprobs !== true)
    throw invalid(`'top_logprobs' requires 'logprobs' to be true.`, 'top_logprobs', 'invalid_value');
  return {
    ...(r.logprobs === true ? { topLogprobs: isInt(tl) ? tl : 0 } : {}),
    model,
    prompt: prompt ?? '',
    promptTokens: approxTokens(texts.join('\n')),
    ...sampling,
    ...format,
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
    const completionTokens = choices.reduce((s, c) => s + c.tokens, 0);
    const reasoningTokens = choices.reduce(
      (s, c) => s + (c.reasoningContent !== undefined ? approxTokens(c.reasoningContent) : 0),
      0,
    );
    const reply: ChatReply = {
      model: parsed.model,
      fingerprint: 'fp_procedural_v1',
      choices: choices.map((c) => {
        // Only the ONNX students have a distribution to report; the procedural teacher has none (logprobs: null).
        const logprobs = (c as { logprobs?: unknown }).logprobs;
        return { ...c, logprobs: logprobs ? { content: logprobs, refusal: null } : null };
      }),
      usage: {
        prompt_tokens: parsed.promptTokens,
        completion_tokens: completionTokens,
        total_tokens: parsed.promptTokens + completionTokens,
        completion_tokens_details: { reasoning_tokens: reasoningTokens },
      },
    };
    if (!res) return chatCompletionPayload(reply);
    sendChatReply(res, reply, parsed);
    return undefined;
  }

  /** A fine-tuned (or base) student of the fine-tuning API answers: see student-serving.ts. */
  async function studentChoices(parsed: ParsedRequest): Promise<GeneratedChoice[]> {
    try {
      const choices = await students.complete(parsed);
      if (!choices) throw modelNotFound(parsed.model);
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

  const route = openAiRouter({
    modelObject,
    apiKey: opts.apiKey,
    health: (res) => sendJson(res, 200, { status: 'ok', model }),
    chat: async (req, res) => {
      await answerChat(await readJsonBody(req), res);
    },
    more: async (method, path, req, res) =>
      (await batches.handle(method, path, req, res)) || (await fineTuning.handle(method, path, req, res)),
  });
  const server = createApiServer(async (req, res) => {
    counters.requests++;
    await route(req, res);
  });
  const { port, url } = await listenApi(server, opts.port ?? 0, host);
  let closing: Promise<void> | null = null;

  return {
    url,
    port,
    model,
    close() {
      closing ??= Promise.all([closeGracefully(server), fineTuning.close(), students.close()]).then(() => undefined);
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
