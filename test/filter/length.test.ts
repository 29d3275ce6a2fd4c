import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { resolveFilters } from '../../schemas/filter-options';
import { byteCounter, estimateTokens, LengthFilter, loadTokenCounter } from '../../activities/filter/length';
import { candidate } from './helpers';

/** A tiny Hugging Face BPE tokenizer.json: a, b, c and the merges ab, abc. */
const BPE = {
  version: '1.0',
  added_tokens: [],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: null,
  decoder: null,
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    vocab: { a: 0, b: 1, c: 2, ab: 3, abc: 4 },
    merges: ['a b', 'ab c'],
  },
};

describe('length in tokens', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'len-'));
  const hfFile = path.join(dir, 'hf', 'tokenizer.json');
  require('node:fs').mkdirSync(path.dirname(hfFile));
  writeFileSync(hfFile, JSON.stringify(BPE));
  const byteFile = path.join(dir, 'byte-tokenizer.json');
  writeFileSync(
    byteFile,
    JSON.stringify({
      type: 'byte',
      vocab_size: 259,
      bos_id: 256,
      eos_id: 257,
      pad_id: 258,
      chat_template: {
        add_bos: true,
        user_prefix: 'User: ',
        assistant_prefix: '\nAssistant: ',
        completion_suffix: 'eos',
      },
    }),
  );

  test('the estimate: ~4 ASCII characters per token, one per CJK character', () => {
    expect(estimateTokens('abcdefgh')).toBe(2);
    expect(estimateTokens('你好世界')).toBe(4);
    expect(estimateTokens('')).toBe(0);
  });

  test("the byte tokenizer counts the tiny student's template byte for byte", () => {
    // [BOS] + utf8("User: " + prompt + "\nAssistant: ") ; utf8(answer) + [EOS]
    expect(byteCounter().count('Hi', 'é')).toEqual({ prompt: 1 + 6 + 2 + 12, completion: 2 + 1, total: 24 });
  });

  test.each([
    ['estimate', undefined, 'estimate', false],
    ['byte', 'byte', 'byte', true],
    ['a byte tokenizer.json (the student model dir)', 'BYTE_FILE', 'byte:', true],
    ['a Hugging Face tokenizer.json', 'HF_FILE', 'hf:', true],
    ['a model dir holding tokenizer.json', 'HF_DIR', 'hf:', true],
  ])('loads %s', async (_name, spec, name, exact) => {
    const resolved =
      spec === 'BYTE_FILE' ? byteFile : spec === 'HF_FILE' ? hfFile : spec === 'HF_DIR' ? path.dirname(hfFile) : spec;
    const c = await loadTokenCounter(resolved);
    expect(c.name.startsWith(name)).toBe(true);
    expect(c.exact).toBe(exact);
  });

  test('the Hugging Face tokenizer counts real (sub)word tokens', async () => {
    const c = await loadTokenCounter(hfFile);
    expect(c.count('abc', 'abc ab cab')).toEqual({ prompt: 1, completion: 4, total: 5 }); // abc | abc, ab, c, ab
  });

  test('a missing tokenizer is an error, not a silent estimate', async () => {
    await expect(loadTokenCounter(path.join(dir, 'nope.json'))).rejects.toThrow(/no tokenizer.json/);
  });

  test.each([
    ['within bounds', { maxTokens: 100, minTokens: 1 }, 'x'.repeat(40), null],
    ['prompt + completion over maxTokens', { maxTokens: 100 }, 'x'.repeat(400), 'too_many_tokens'],
    ['completion under minTokens', { minTokens: 50 }, 'short', 'too_few_tokens'],
    ['no bounds (default)', {}, 'x'.repeat(100_000), null],
  ])('%s', async (_name, opts, reasoning, reason) => {
    const f = resolveFilters({ length: opts });
    const filter = new LengthFilter(await loadTokenCounter(f.length.tokenizer), f.length);
    expect(filter.check(candidate('Compute 1+2.', reasoning))?.reason ?? null).toBe(reason);
  });

  test('with the byte tokenizer the bound is exact', async () => {
    const c = candidate('Hi', 'r', 's');
    const total = byteCounter().count('Hi', c.text).total;
    const at = new LengthFilter(byteCounter(), resolveFilters({ length: { maxTokens: total } }).length);
    const below = new LengthFilter(byteCounter(), resolveFilters({ length: { maxTokens: total - 1 } }).length);
    expect(at.check(c)).toBeNull();
    expect(below.check(c)?.reason).toBe('too_many_tokens');
  });
});
