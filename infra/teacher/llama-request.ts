/**
 * The OpenAI chat.completions request as the llama.cpp teacher accepts it: validation with OpenAI-style errors, the
 * per-choice seed, and the `<think>` split for `reasoning_format: "separate"`.
 */
// One derivation of per-choice seeds for every path that splits n choices into n requests.
export { choiceSeed } from '../../activities/generate/sample-ids';
import { invalid, type SamplingRequest } from './http-common';
import {
  chatRequestBody,
  messageAt,
  messageText,
  modelNotFound,
  parseReplyFormat,
  parseSampling,
} from './chat-endpoint';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ParsedLlamaRequest extends SamplingRequest {
  messages: Array<{ role: ChatRole; text: string }>;
  frequencyPenalty: number;
  presencePenalty: number;
  stream: boolean;
  includeUsage: boolean;
  reasoningFormat: 'inline' | 'separate';
}

const ROLE_MAP: Record<string, ChatRole> = {
  system: 'system',
  developer: 'system',
  user: 'user',
  assistant: 'assistant',
};

function penalty(r: Record<string, unknown>, key: string): number {
  const v = r[key] ?? 0;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < -2 || v > 2) {
    throw invalid(`Invalid '${key}': expected a number between -2 and 2.`, key, 'invalid_value');
  }
  return v;
}

/** Validates an OpenAI chat.completions body (the same rules and messages as the procedural teacher's server). */
export function parseLlamaChatRequest(body: unknown, servedModel: string): ParsedLlamaRequest {
  const { r, model, messages: raw } = chatRequestBody(body);
  const messages = raw.map((m, i) => {
    const { role, content } = messageAt(m, i);
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
    const text = messageText(content, i, (_part, j) => {
      throw invalid(
        `Invalid content part at messages[${i}].content[${j}]: this model takes text parts only.`,
        `messages[${i}].content`,
      );
    });
    return { role: ROLE_MAP[role], text };
  });
  const sampling = parseSampling(r);
  const frequencyPenalty = penalty(r, 'frequency_penalty');
  const presencePenalty = penalty(r, 'presence_penalty');
  const format = parseReplyFormat(r);
  if (model !== servedModel) throw modelNotFound(model);
  return { model, messages, ...sampling, frequencyPenalty, presencePenalty, ...format };
}

/** DeepSeek-style split of a leading `<think>…</think>` block (for `reasoning_format: "separate"`). */
export function splitThink(text: string): { reasoning?: string; content: string } {
  const m = /^\s*<think>([\s\S]*?)(<\/think>\s*|$)/.exec(text);
  if (!m) return { content: text };
  return { reasoning: m[1].trim(), content: text.slice(m[0].length) };
}
