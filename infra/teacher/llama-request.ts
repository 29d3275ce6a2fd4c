/**
 * The OpenAI chat.completions request as the llama.cpp teacher accepts it: validation with OpenAI-style errors, the
 * per-choice seed, and the `<think>` split for `reasoning_format: "separate"`.
 */
import { createHash, randomInt } from 'node:crypto';
import { HttpError, invalid, type SamplingRequest } from './http-common';

const MAX_N = 128;

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ParsedLlamaRequest extends SamplingRequest {
  messages: Array<{ role: ChatRole; text: string }>;
  frequencyPenalty: number;
  presencePenalty: number;
  stream: boolean;
  includeUsage: boolean;
  reasoningFormat: 'inline' | 'separate';
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
        throw invalid(
          `Invalid content part at messages[${index}].content[${j}]: this model takes text parts only.`,
          `messages[${index}].content`,
        );
      })
      .join('');
  }
  throw invalid(`Invalid type for 'messages[${index}].content'.`, `messages[${index}].content`, 'invalid_type');
}

const ROLE_MAP: Record<string, ChatRole> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function penalty(r: Record<string, unknown>, key: string): number {
  const v = r[key] ?? 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < -2 || v > 2) {
    throw invalid(`Invalid '${key}': expected a number between -2 and 2.`, key, 'invalid_value');
  }
  return v;
}

/** Validates an OpenAI chat.completions body (the same rules and messages as the procedural teacher's server). */
export function parseLlamaChatRequest(body: unknown, servedModel: string): ParsedLlamaRequest {
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
  const messages = r.messages.map((m, i) => {
    if (!m || typeof m !== 'object')
      throw invalid(`Invalid type for 'messages[${i}]': expected an object.`, `messages[${i}]`, 'invalid_type');
    const role = (m as { role?: unknown }).role;
    if (role === 'tool' || role === 'function') {
      throw invalid(
        `Invalid value for 'messages[${i}].role': this local teacher does not support tool calls.`,
        `messages[${i}].role`,
        'unsupported_value',
      );
    }
    if (typeof role !== 'string' || !ROLE_MAP[role]) {
      throw invalid(`Invalid value for 'messages[${i}].role'.`, `messages[${i}].role`, 'invalid_value');
    }
    return { role: ROLE_MAP[role], text: messageText((m as { content?: unknown }).content, i) };
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
  const frequencyPenalty = penalty(r, 'frequency_penalty');
  const presencePenalty = penalty(r, 'presence_penalty');
  const rf = r.reasoning_format;
  if (rf !== undefined && rf !== null && rf !== 'separate' && rf !== 'inline') {
    throw invalid(`Invalid 'reasoning_format': expected 'inline' or 'separate'.`, 'reasoning_format', 'invalid_value');
  }
  if (r.stream !== undefined && r.stream !== null && typeof r.stream !== 'boolean') {
    throw invalid(`Invalid 'stream': expected a boolean.`, 'stream', 'invalid_type');
  }
  if (r.model !== servedModel) {
    throw new HttpError(
      404,
      `The model \`${r.model}\` does not exist or you do not have access to it.`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
  const so = r.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    model: r.model,
    messages,
    n,
    temperature,
    topP,
    maxTokens,
    seed,
    stop,
    frequencyPenalty,
    presencePenalty,
    stream: r.stream === true,
    includeUsage: !!(so && typeof so === 'object' && so.include_usage === true),
    reasoningFormat: rf === 'separate' ? 'separate' : 'inline',
  };
}

/** The sampling seed of choice `index`: a 31-bit hash of (request seed, index). */
export function choiceSeed(seed: number | string, index: number): number {
  return createHash('sha256').update(`${seed}:${index}`).digest().readUInt32BE(0) & 0x7fffffff;
}

/** DeepSeek-style split of a leading `<think>…</think>` block (for `reasoning_format: "separate"`). */
export function splitThink(text: string): { reasoning?: string; content: string } {
  const m = /^\s*<think>([\s\S]*?)(<\/think>\s*|$)/.exec(text);
  if (!m) return { content: text };
  return { reasoning: m[1].trim(), content: text.slice(m[0].length) };
}
