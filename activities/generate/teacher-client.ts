import OpenAI from 'openai';
import { ApplicationFailure } from '@temporalio/common';
import type { RunSpec } from '../../schemas/run-spec';
import { limiterFor } from './endpoint-limiter';
import { apiKeyFor } from '../security/worker-policy';

import { fromOpenAILogprobs, type TokenLogprob } from './logprobs-sidecar';
import { WastedGenerationDetector, type AbortWasted } from './wasted-generation';
import { choiceSeed } from './sample-ids';

export interface TeacherChoice {
  index: number;
  content: string;
  reasoning?: string;
  finishReason: string | null;
  /** Per generated token: its log-probability and the top alternatives' (when sampling.logprobs asked for them). */
  logprobs?: TokenLogprob[];
  /** This choice's own usage, when it was a request of its own (sampling.abortWasted). */
  usage?: { promptTokens: number; completionTokens: number };
  /** Cancelled mid-stream as wasted (finishReason aborted_loop / aborted_length): why, and max_tokens left unspent. */
  aborted?: { detail: string; savedTokens: number };
}

export interface TeacherAnswer {
  choices: TeacherChoice[];
  usage: { promptTokens: number; completionTokens: number };
  model: string;
  systemFingerprint?: string | null;
  latencyMs: number;
  /** HTTP requests this answer took, when not one (each choice streamed on its own, with its retries). */
  httpRequests?: number;
}

export interface TeacherRequest {
  prompt: string;
  n: number;
  seed: number;
}

/**
 * A thin client for any OpenAI-compatible chat endpoint. Transient failures (429, 5xx, timeouts, resets) are retried
 * by the openai package with backoff (it honours Retry-After) and then by Temporal; requests that cannot succeed
 * (400/401/403/404) become non-retryable failures that say what to fix.
 */
export function createTeacherClient(
  teacher: RunSpec['teacher'],
  sampling: RunSpec['sampling'],
  env: NodeJS.ProcessEnv = process.env,
) {
  // The worker's key policy decides whether this key may go to this host; a keyless endpoint gets a placeholder.
  const apiKey =
    apiKeyFor({ field: 'teacher.apiKeyEnv', envName: teacher.apiKeyEnv, baseURL: teacher.baseURL }, env) ??
    'not-needed';
  const client = new OpenAI({
    baseURL: teacher.baseURL,
    apiKey,
    maxRetries: teacher.maxRetries,
    timeout: teacher.requestTimeoutSeconds * 1000,
  });

  const limiter = limiterFor(`${teacher.baseURL}|${teacher.model}`, {
    maxInFlight: teacher.maxInFlight,
    requestsPerMinute: teacher.requestsPerMinute,
    tokensPerMinute: teacher.tokensPerMinute,
  });

  /**
   * HTTP-level faults (429 with Retry-After, 5xx, timeouts, resets) are retried inside the openai client. A reply
   * that arrives but cannot be used (truncated JSON, no choices) is retried here, with the same backoff shape.
   */
  async function complete(req: TeacherRequest, signal?: AbortSignal): Promise<TeacherAnswer> {
    if (sampling.abortWasted) return completeStreamed(req, sampling.abortWasted, signal);
    return withRetries(
      () =>
        limiter.run(
          () => completeOnce(req, signal),
          (a) => a.usage.promptTokens + a.usage.completionTokens,
        ),
      signal,
    );
  }

  async function withRetries<T>(once: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await once();
      } catch (err) {
        if (signal?.aborted) throw err;
        if (!isMalformedReply(err) || attempt >= teacher.maxRetries) throw describeTeacherFailure(err, teacher);
        await sleep(backoffMs(attempt), signal);
      }
    }
  }

  async function completeOnce(req: TeacherRequest, signal?: AbortSignal): Promise<TeacherAnswer> {
    const started = Date.now();
    try {
      const res = await client.chat.completions.create(chatRequestBody(teacher, sampling, req), { signal });
      if (!res || !Array.isArray(res.choices)) {
        throw new MalformedReplyError(`teacher at ${teacher.baseURL} answered without a choices array`);
      }
      const answer = toTeacherAnswer(res, teacher.model, Date.now() - started);
      if (sampling.logprobs) requireLogprobs(answer, teacher, sampling.logprobs);
      return answer;
    } catch (err) {
      throw classifyTeacherError(err, teacher);
    }
  }

  /**
   * Each choice as its own streamed request (its own limiter slot, its own retries: its seed is fixed by its index, so
   * a retried choice is the same request), cancelled once wasted; one answer with the choices in order. The first
   * choice that fails for good cancels its siblings.
   */
  async function completeStreamed(
    req: TeacherRequest,
    abort: AbortWasted,
    signal?: AbortSignal,
  ): Promise<TeacherAnswer> {
    const started = Date.now();
    const group = new AbortController();
    const onAbort = () => group.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let httpRequests = 0;
    try {
      const streamed = await Promise.all(
        Array.from({ length: req.n }, (_, k) =>
          withRetries(() => {
            httpRequests += 1;
            return limiter.run(
              () => streamChoice(req, k, abort, group.signal),
              (c) => c.choice.usage!.promptTokens + c.choice.usage!.completionTokens,
            );
          }, group.signal).catch((err) => {
            group.abort();
            throw err;
          }),
        ),
      );
      // A cancelled stream reports no usage: its prompt cost what a sibling's did (the same prompt), or an estimate.
      const promptTokens =
        streamed.find((c) => c.reportedUsage)?.choice.usage!.promptTokens ?? Math.ceil(req.prompt.length / 4);
      for (const c of streamed) if (!c.reportedUsage) c.choice.usage!.promptTokens = promptTokens;
      const choices = streamed.map((c) => c.choice);
      return {
        choices,
        usage: {
          promptTokens: choices.reduce((t, c) => t + c.usage!.promptTokens, 0),
          completionTokens: choices.reduce((t, c) => t + c.usage!.completionTokens, 0),
        },
        model: streamed[0]?.model ?? teacher.model,
        systemFingerprint: streamed[0]?.fingerprint ?? null,
        latencyMs: Date.now() - started,
        httpRequests,
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async function streamChoice(
    req: TeacherRequest,
    index: number,
    abort: AbortWasted,
    signal: AbortSignal,
  ): Promise<{ choice: TeacherChoice; reportedUsage: boolean; model?: string; fingerprint?: string | null }> {
    const body = chatRequestBody(teacher, sampling, { ...req, n: 1, seed: choiceSeed(req.seed, index) });
    // The client's timeout ends once headers arrive; a stream that then stalls is cut after requestTimeoutSeconds
    // without a piece, and retried like a timeout.
    const idle = new AbortController();
    const onAbort = () => idle.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let stalled = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        idle.abort();
      }, teacher.requestTimeoutSeconds * 1000);
    };
    const detector = new WastedGenerationDetector(abort);
    let content = '';
    let reasoning = '';
    let finishReason: string | null = null;
    let pieces = 0;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    let model: string | undefined;
    let fingerprint: string | null | undefined;
    let cut: ReturnType<WastedGenerationDetector['check']> = null;
    try {
      arm();
      const stream = await client.chat.completions.create(
        { ...body, stream: true, stream_options: { include_usage: true } },
        { signal: idle.signal },
      );
      for await (const chunk of stream) {
        arm();
        model ??= chunk.model;
        fingerprint ??= chunk.system_fingerprint;
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices ?? []) {
          const d = c.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
          if (d?.content) content += d.content;
          if (d?.reasoning_content) reasoning += d.reasoning_content;
          if (d?.content || d?.reasoning_content) pieces += 1;
          if (c.finish_reason) finishReason = c.finish_reason;
        }
        cut = finishReason ? null : detector.check(reasoning + content);
        // Leaving the loop closes the stream: the server sees the connection go and stops generating.
        if (cut) break;
      }
    } catch (err) {
      if (stalled && !signal.aborted)
        throw new MalformedReplyError(
          `teacher at ${teacher.baseURL} sent nothing for ${teacher.requestTimeoutSeconds} s (teacher.requestTimeoutSeconds) in the middle of a stream`,
        );
      throw classifyTeacherError(err, teacher);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    if (!cut && !finishReason)
      throw new MalformedReplyError(`teacher at ${teacher.baseURL} ended a stream without a finish_reason`);
    // Servers stream about one token per content piece; a cancelled request reports no usage of its own.
    const generated = usage?.completion_tokens ?? pieces;
    const choice: TeacherChoice = {
      index,
      content,
      ...(reasoning ? { reasoning } : {}),
      finishReason: cut ? cut.reason : finishReason,
      usage: { promptTokens: usage?.prompt_tokens ?? 0, completionTokens: generated },
      ...(cut ? { aborted: { detail: cut.detail, savedTokens: Math.max(0, sampling.max_tokens - generated) } } : {}),
    };
    return { choice, reportedUsage: !!usage, model, fingerprint };
  }

  return { complete, limiter, openai: client };
}

/** The parts of a chat.completion a sample keeps, from an online reply or a Batch API output line. */
export function toTeacherAnswer(res: OpenAI.Chat.ChatCompletion, model: string, latencyMs: number): TeacherAnswer {
  return {
    choices: res.choices.map((c, i) => ({
      index: typeof c.index === 'number' ? c.index : i,
      content: c.message?.content ?? '',
      reasoning: (c.message as { reasoning_content?: string } | undefined)?.reasoning_content ?? undefined,
      finishReason: c.finish_reason ?? null,
      ...(c.logprobs?.content ? { logprobs: fromOpenAILogprobs(c.logprobs.content) } : {}),
    })),
    usage: { promptTokens: res.usage?.prompt_tokens ?? 0, completionTokens: res.usage?.completion_tokens ?? 0 },
    model: res.model ?? model,
    systemFingerprint: res.system_fingerprint ?? null,
    latencyMs,
  };
}

/** The request body for one prompt: the same online and in a batch. */
export function chatRequestBody(
  teacher: RunSpec['teacher'],
  sampling: RunSpec['sampling'],
  req: TeacherRequest,
): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
  if (teacher.systemPrompt) messages.push({ role: 'system', content: teacher.systemPrompt });
  messages.push({ role: 'user', content: req.prompt });
  return {
    model: teacher.model,
    messages,
    n: req.n,
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_tokens: sampling.max_tokens,
    seed: req.seed,
    ...(sampling.stop ? { stop: sampling.stop } : {}),
    ...(sampling.logprobs ? { logprobs: true, top_logprobs: sampling.logprobs } : {}),
  };
}

/**
 * Soft targets cannot come from an endpoint that does not return them, and asking again will not change that: the
 * first reply without them fails the run at once, naming the endpoint and the field.
 */
export function requireLogprobs(answer: TeacherAnswer, teacher: RunSpec['teacher'], k: number): void {
  const i = answer.choices.findIndex((c) => !c.logprobs);
  if (i < 0) return;
  throw ApplicationFailure.nonRetryable(
    `Teacher ${teacher.model} at ${teacher.baseURL} returned no choices[${i}].logprobs.content although the request asked for logprobs with top_logprobs=${k} (sampling.logprobs, needed by fineTune.objective kd). ` +
      "Hosted reasoning APIs (DeepSeek's reasoner, OpenAI's reasoning models) refuse logprobs: soft targets need a self-hosted teacher (vLLM with --max-logprobs, llama.cpp's server), or drop sampling.logprobs and train with objective sft.",
    'TeacherLogprobsMissing',
  );
}

export class MalformedReplyError extends Error {
  override name = 'MalformedReplyError';
}

function isMalformedReply(err: unknown): boolean {
  // A 200 whose body is not JSON surfaces from the openai client as a SyntaxError (by name: it may come from
  // another realm, e.g. undici's JSON parsing, where instanceof fails).
  return err instanceof MalformedReplyError || (err as { name?: unknown } | null)?.name === 'SyntaxError';
}

/** Exponential backoff with full jitter: 0.5 s, 1 s, 2 s … capped at 30 s, each scaled by a random factor. */
export function backoffMs(attempt: number): number {
  return Math.random() * Math.min(30_000, 500 * 2 ** attempt);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

const fixHints: Record<number, string> = {
  400: 'the request was refused as malformed: check teacher.model and the sampling parameters (n, max_tokens, stop) against what the endpoint supports',
  401: 'the endpoint refused the API key: check the environment variable named by teacher.apiKeyEnv',
  403: 'the API key has no access to this model or endpoint',
  404: 'no such model or path: check teacher.baseURL (it usually ends in /v1) and teacher.model',
  422: 'the endpoint could not process the request parameters',
};

export function classifyTeacherError(err: unknown, teacher: RunSpec['teacher']): unknown {
  if (err instanceof OpenAI.APIError && typeof err.status === 'number' && fixHints[err.status]) {
    return ApplicationFailure.nonRetryable(
      `Teacher ${teacher.model} at ${teacher.baseURL} answered HTTP ${err.status}: ${fixHints[err.status]}. Server said: ${err.message}`,
      `TeacherHttp${err.status}`,
    );
  }
  return err;
}

/**
 * A transient teacher failure that outlasted the client's own retries, as a retryable ApplicationFailure (Temporal
 * retries the shard with backoff) whose message says which endpoint and model failed and how, so that the final
 * error of a teacher that is down for good is one a person can act on. Non-retryable failures pass through.
 */
export function describeTeacherFailure(err: unknown, teacher: RunSpec['teacher']): unknown {
  if (err instanceof ApplicationFailure) return err;
  const e = err as { name?: string; message?: string; status?: number } | null;
  const tries = `${teacher.maxRetries + 1} tries`;
  let what: string;
  let type: string;
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    what = `timed out after ${teacher.requestTimeoutSeconds} s (teacher.requestTimeoutSeconds) on each of ${tries}`;
    type = 'TeacherTimeout';
  } else if (err instanceof OpenAI.APIConnectionError) {
    what = `could not be reached (${tries}): ${e?.message ?? 'connection error'}${causeOf(err)}`;
    type = 'TeacherUnreachable';
  } else if (err instanceof OpenAI.APIError && typeof e?.status === 'number') {
    what = `answered HTTP ${e.status} (${tries}, last: ${e.message ?? ''})`;
    type = e.status === 429 ? 'TeacherRateLimited' : 'TeacherUnavailable';
  } else if (isMalformedReply(err)) {
    what = `sent replies that are not a usable chat completion (${tries}, last: ${e?.message ?? ''})`;
    type = 'TeacherMalformedReply';
  } else {
    return err;
  }
  return ApplicationFailure.create({
    message: `Teacher ${teacher.model} at ${teacher.baseURL} ${what}`,
    type,
    nonRetryable: false,
    cause: err instanceof Error ? err : undefined,
  });
}

function causeOf(err: unknown): string {
  const c = (err as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message ?? ''})` : '';
}
