import { generateArithmeticProblems, solveWithReasoning } from '../../activities/dataset/arithmetic-task';
import { resolveFilters } from '../../schemas/filter-options';
import { RepetitionFilter, RepetitionMeter } from '../../activities/filter/repetition';
import { candidate } from './helpers';

const NATURAL =
  'We need the sum of the first ten positive integers. One way is to pair them: one with ten, two with nine, three with eight, four with seven and five with six. ' +
  'Each pair adds up to eleven and there are five pairs, so the total is fifty five. Let me double check with the formula n times n plus one over two: ten times eleven is one hundred ten, ' +
  'and half of that is fifty five. Both methods agree.';

describe('repetition: duplicate n-grams and loops', () => {
  const filter = new RepetitionFilter(resolveFilters({}).repetition);
  test.each([
    ['natural reasoning', NATURAL, null],
    [
      'a verification step that repeats one phrase twice',
      `${NATURAL} Wait, let me double check with the formula once more: ten times eleven is one hundred ten.`,
      null,
    ],
    ['a sentence looping at the end (stuck model)', `${NATURAL} ${'So the answer is fifty five. '.repeat(8)}`, 'loop'],
    [
      'a loop in the middle that the model escaped',
      `${NATURAL} ${'Let me recompute the pairs one by one. '.repeat(6)} Done, fifty five.`,
      'loop',
    ],
    ['a single token repeated', `${NATURAL} ${'1 '.repeat(40)}`, 'loop'],
    ['a Chinese loop (characters are tokens)', `首先计算。${'所以答案是五十五。'.repeat(6)}`, 'loop'],
    [
      'a paragraph restated three times, not back to back',
      `${NATURAL} Now something else entirely different here. ${NATURAL} And another aside about the numbers. ${NATURAL}`,
      'repetition',
    ],
    ['short answer', 'Yes.', null],
  ])('%s', (_name, reasoning, reason) => {
    expect(filter.check(candidate('Sum 1..10?', reasoning))?.reason ?? null).toBe(reason);
  });

  test("the project's own arithmetic traces are not repetitive", () => {
    for (const p of generateArithmeticProblems({ split: 'train', count: 200, seed: 4, digits: 6, ops: ['+', '-'] })) {
      const [, a, op, b] = /Compute (\d+)([+-])(\d+)\./.exec(p.prompt)!;
      const trace = solveWithReasoning(Number(a), op as '+' | '-', Number(b));
      const m = /<think>([\s\S]*)<\/think>([\s\S]*)/.exec(trace)!;
      expect(filter.check(candidate(p.prompt, m[1]!.trim(), m[2]!.trim()))).toBeNull();
    }
  });

  test('thresholds are configurable; off drops nothing', () => {
    const strict = new RepetitionFilter(
      resolveFilters({ repetition: { ngram: 5, maxDuplicateFraction: 0.05 } }).repetition,
    );
    expect(
      strict.check(
        candidate(
          'q',
          `${NATURAL} Wait, let me double check with the formula once more: ten times eleven is one hundred ten.`,
        ),
      )?.reason,
    ).toBe('repetition');
    const off = new RepetitionFilter(resolveFilters({ repetition: { enabled: false } }).repetition);
    expect(
      off.check(
        candidate(
          'q',
          'so so so so so so so so so so so so so so so so so so so so so so so so so so so so so so so so',
        ),
      ),
    ).toBeNull();
  });

  test('the meter reports period and repeats of the longest loop', () => {
    const m = new RepetitionMeter(10, 3, 30).measure('intro words here. ' + 'a b c d e f '.repeat(10));
    expect(m.loop).toMatchObject({ period: 6, repeats: 10 });
    expect(m.duplicateFraction).toBeGreaterThan(0.7);
  });
});
