/**
 * Length in tokens. With the student's tokenizer the count is exact: `byte` (or a tokenizer.json of type "byte", the
 * tiny student's: UTF-8 bytes plus BOS/EOS around its chat template) or a Hugging Face tokenizer.json (through
 * @huggingface/tokenizers, with tokenizer_config.json read from beside it when present). Without one, an estimate:
 * about four ASCII characters per token and one token per other character (CJK, symbols).
 */
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { FilterOptions } from '../../schemas/filter-options';
import type { Candidate, Verdict } from './types';

export interface TokenCount {
  prompt: number;
  completion: number;
  /** The training sequence: prompt, completion and the template's own tokens where known. */
  total: number;
}

export interface TokenCounter {
  /** `estimate`, `byte`, or `hf:<path>`. */
  name: string;
  exact: boolean;
  count(prompt: string, completion: string): TokenCount;
}

export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) ascii++;
    else if (c < 0xdc00 || c > 0xdfff) other++; // a surrogate pair counts once
  }
  return Math.ceil(ascii / 4) + other;
}

const estimator: TokenCounter = {
  name: 'estimate',
  exact: false,
  count(prompt, completion) {
    const p = estimateTokens(prompt);
    const c = estimateTokens(completion);
    return { prompt: p, completion: c, total: p + c };
  },
};

interface ByteTemplate {
  user_prefix?: string;
  assistant_prefix?: string;
  add_bos?: boolean;
  completion_suffix?: string;
}

/** The tiny student's byte tokenizer (infra/trainer/byte_tokenizer.py): its template, byte for byte. */
export function byteCounter(template: ByteTemplate = {}): TokenCounter {
  const userPrefix = template.user_prefix ?? 'User: ';
  const assistantPrefix = template.assistant_prefix ?? '\nAssistant: ';
  const bos = template.add_bos === false ? 0 : 1;
  const eos = template.completion_suffix === undefined || template.completion_suffix === 'eos' ? 1 : 0;
  return {
    name: 'byte',
    exact: true,
    count(prompt, completion) {
      const p = bos + Buffer.byteLength(userPrefix + prompt + assistantPrefix, 'utf8');
      const c = Buffer.byteLength(completion, 'utf8') + eos;
      return { prompt: p, completion: c, total: p + c };
    },
  };
}

/** A Hugging Face tokenizer.json. The chat template's own tokens are not counted (the template is not applied). */
export async function hfCounter(file: string): Promise<TokenCounter> {
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as object;
  const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
  const config = existsSync(cfgFile) ? (JSON.parse(await fs.readFile(cfgFile, 'utf8')) as object) : {};
  const tok = new Tokenizer(json, config);
  const n = (s: string) => tok.encode(s, { add_special_tokens: false }).ids.length;
  return {
    name: `hf:${file}`,
    exact: true,
    count(prompt, completion) {
      const p = n(prompt);
      const c = n(completion);
      return { prompt: p, completion: c, total: p + c };
    },
  };
}

/** `estimate`, `byte`, or a path to a tokenizer.json (byte-type or Hugging Face). */
export async function loadTokenCounter(spec: string | undefined): Promise<TokenCounter> {
  if (!spec || spec === 'estimate') return estimator;
  if (spec === 'byte') return byteCounter();
  const file = existsSync(path.join(spec, 'tokenizer.json')) ? path.join(spec, 'tokenizer.json') : spec;
  if (!existsSync(file)) throw new Error(`filters.length.tokenizer: no tokenizer.json at ${spec}`);
  const json = JSON.parse(await fs.readFile(file, 'utf8')) as { type?: string; chat_template?: ByteTemplate };
  if (json.type === 'byte') return { ...byteCounter(json.chat_template), name: `byte:${file}` };
  return hfCounter(file);
}

export class LengthFilter {
  last: TokenCount = { prompt: 0, completion: 0, total: 0 };

  constructor(
    private readonly counter: TokenCounter,
    private readonly opts: FilterOptions['length'],
  ) {}

  check(c: Candidate): Verdict {
    const t = (this.last = this.counter.count(c.sample.prompt, c.text));
    if (this.opts.maxTokens !== undefined && t.total > this.opts.maxTokens) {
      return { reason: 'too_many_tokens', detail: `${t.total} tokens (${this.counter.name}) > ${this.opts.maxTokens}` };
    }
    if (t.completion < this.opts.minTokens) {
      return {
        reason: 'too_few_tokens',
        detail: `${t.completion} completion tokens (${this.counter.name}) < ${this.opts.minTokens}`,
      };
    }
    return null;
  }
}
