import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateArithmeticProblems } from '../../activities/dataset/arithmetic-task';
import { buildDecontaminator } from '../../activities/filter/decontaminate';

const PROBLEM =
  'Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers market?';

describe('decontamination: prompts sharing an n-gram with a benchmark problem', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'decon-'));
  const bench = path.join(dir, 'bench.jsonl');
  writeFileSync(
    bench,
    [
      JSON.stringify({ id: 'gsm-0', question: PROBLEM }),
      JSON.stringify({ id: 'gsm-1', question: 'x' }), // too short to match safely
      JSON.stringify({ id: 'gsm-2' }), // no such field
      JSON.stringify({ id: 'gsm-3', question: 'What is 7 × 8?' }), // short: matched whole
    ].join('\n'),
  );
  const heldout = generateArithmeticProblems({ split: 'heldout', count: 50, seed: 2, digits: 2, ops: ['+'] });
  const train = generateArithmeticProblems({ split: 'train', count: 50, seed: 2, digits: 2, ops: ['+'] });
  const build = (ngram = 8) =>
    buildDecontaminator({
      ngram,
      minItemTokens: 3,
      benchmarks: [{ path: bench, field: 'question', name: 'gsm8k' }],
      arithmetic: { count: 50, seed: 2, digits: 2, ops: ['+'] },
    });

  test.each([
    ['the benchmark problem itself', PROBLEM, 'gsm8k problem gsm-0'],
    [
      'an 8-word span inside another question',
      'Consider this: she eats three for breakfast every morning and bakes bread. How many loaves?',
      'gsm8k problem gsm-0',
    ],
    [
      'the same span with other case, punctuation and spacing',
      'SHE EATS three, for breakfast;   every morning AND bakes!',
      'gsm8k problem gsm-0',
    ],
    ['only 7 shared words', 'Note that she eats three for breakfast every morning, then sleeps.', null],
    ['same topic, no shared 8-gram', 'Janet has ducks that lay eggs; how many eggs in a week if 16 per day?', null],
    [
      'a held-out arithmetic problem (shorter than 8 words: matched whole)',
      `Please solve: ${heldout[3]!.prompt}`,
      `arithmetic-heldout problem ${heldout[3]!.id}`,
    ],
    ['a train-split arithmetic problem', `Please solve: ${train[3]!.prompt}`, null],
    ['the operator matters: 47+85 is not 47-85', heldout[0]!.prompt.replace('+', '-'), null],
    ['a short benchmark problem matched whole', 'Quick one: what is 7 × 8? Show work.', 'gsm8k problem gsm-3'],
  ])('%s', async (_name, prompt, where) => {
    const d = await build();
    const v = d.check(prompt);
    if (where === null) expect(v).toBeNull();
    else {
      expect(v?.reason).toBe('contaminated');
      expect(v?.detail).toContain(where);
    }
  });

  test('the n-gram size is configurable', async () => {
    const d = await build(7);
    expect(d.check('Note that she eats three for breakfast every morning, then sleeps.')?.reason).toBe('contaminated');
  });

  test('per-benchmark statistics: items, n-grams, short and skipped problems, hits', async () => {
    const d = await build();
    d.check(PROBLEM);
    d.check('nothing here at all');
    const gsm = d.benchmarks.find((b) => b.name === 'gsm8k')!;
    expect(gsm).toMatchObject({ items: 3, short: 1, skipped: 2, hits: 1 }); // 'x' is read but too short; the row without the field is skipped
    expect(gsm.ngrams).toBeGreaterThan(40);
    expect(d.benchmarks.find((b) => b.name === 'arithmetic-heldout')).toMatchObject({ items: 50, short: 50, hits: 0 });
  });

  test('no benchmarks: nothing is contaminated', async () => {
    const d = await buildDecontaminator({ ngram: 8, minItemTokens: 3, benchmarks: [] });
    expect(d.check(PROBLEM)).toBeNull();
  });
});
