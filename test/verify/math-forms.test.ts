/**
 * Answer forms where a grader can be fooled or too strict: thousands separators written as spaces, a relation that
 * states the value, an approximation after the exact answer, a tuple given as assignments, ratios, a point stated
 * without a box, and a cheating model that writes many candidates. One table per class, each row labelled by hand
 * (`true` = the response states the gold answer). Fail closed: when a form is ambiguous the row says `false`.
 */
import { isEquivalent, normalizeAnswer, verifyMath } from '../../activities/verify/math';

interface Row {
  pred: string;
  gold: string;
  expected: boolean;
  why?: string;
}

const r = (pred: string, gold: string, expected: boolean, why?: string): Row => ({ pred, gold, expected, why });

function table(name: string, rows: Row[]): void {
  describe(name, () => {
    test.each(rows)('$pred vs $gold → $expected', ({ pred, gold, expected }) => {
      const e = isEquivalent(pred, gold);
      expect({ equal: e.equal, reason: e.reason }).toEqual({ equal: expected, reason: expect.any(String) });
      // the same through the verdict path, the answer boxed as a model writes it
      expect(verifyMath(`Some reasoning first.\n\nSo the answer is $\\boxed{${pred}}$.`, gold).verdict === 'correct').toBe(expected);
    });
  });
}

const NNBSP = '\u202f';
const THIN = '\u2009';
const NBSP = '\u00a0';

table('thousands separators written as spaces are one number, never a product', [
  // the false accepts: 45\,000 was read as 45·000 = 0
  r('45\\,000', '0', false),
  r('1\\ 000', '0', false),
  r('1\\;000', '0', false),
  r('1\\:000', '0', false),
  r('1~000', '0', false),
  r(`1${NNBSP}000`, '0', false),
  r(`1${THIN}000`, '0', false),
  r(`1${NBSP}000`, '0', false),
  r('1 000', '0', false),
  r('12\\,345\\,678', '0', false),
  r('2\\,3', '6', false, 'two numbers side by side are not a product'),
  r('2\\ 3', '6', false),
  r('2 3', '6', false),
  // each separator form is the number
  r('45\\,000', '45000', true),
  r('45\\ 000', '45000', true),
  r('45\\;000', '45000', true),
  r('45{,}000', '45000', true),
  r('45~000', '45000', true),
  r(`45${NNBSP}000`, '45000', true),
  r(`45${THIN}000`, '45000', true),
  r(`45${NBSP}000`, '45000', true),
  r('45 000', '45000', true),
  r('45\\,000', '45,000', true),
  r('45\\,000', '45{,}000', true),
  r('-45\\,000', '-45000', true),
  r('45\\,000.5', '45000.5', true),
  r('1\\,234\\,567', '1234567', true),
  r('\\$45\\,000', '45000', true),
  r('45\\,000', '45', false),
  r('45\\,000', '45001', false),
  // groups that are not thousands: not a number at all
  r('4\\,5000', '45000', false),
  r('45\\,00', '4500', false),
  r('450\\,00', '45000', false),
  r('3.141\\,592', '3.141592', false, 'grouped decimals are not read (fail closed)'),
  // commas: policy unchanged — a bare 1,000 is a thousand, (1,000) a tuple, 1,5 a list (not a decimal comma)
  r('1,000', '1000', true),
  r('(1,000)', '1000', false),
  r('(1,000)', '(1,0)', true, 'a parenthesised pair, as written'),
  r('1,5', '1.5', false, 'European decimal comma: fail closed'),
  r('1,5', '15', false),
  r('1{,}5', '1.5', false),
]);

describe('a cheating model that writes many candidates is never correct', () => {
  const many = Array.from({ length: 100 }, (_, k) => k + 1);
  test.each([
    { name: 'a list of candidates', answer: many.join(', '), gold: '37' },
    { name: 'a list with \\ldots', answer: '1, 2, 3, \\ldots, 100', gold: '2' },
    { name: 'a list with ...', answer: '1, 2, 3, ..., 100', gold: '2' },
    { name: 'x = a list', answer: `x = ${many.join(', ')}`, gold: '37' },
    { name: 'x = a list with \\dots', answer: 'x = 1, 2, 3, \\dots, 100', gold: '2' },
    { name: 'alternatives with or', answer: '1 \\text{ or } 2 \\text{ or } 3', gold: '2' },
    { name: 'a chain of equalities', answer: 'x = 1 = 2 = 3', gold: '2' },
    { name: 'membership in a set of candidates', answer: 'x \\in \\{1, 2, 3\\}', gold: '2' },
    { name: 'a set of candidates', answer: '\\{1, 2, 3\\}', gold: '2' },
    { name: 'plus-minus', answer: '1 \\pm 1', gold: '2' },
    { name: 'an interval around the answer', answer: '1 < x < 3', gold: '2' },
    { name: 'an approximation pointing elsewhere', answer: '2 \\approx 3', gold: '3' },
    { name: 'separator-joined candidates', answer: '1\\,2\\,3', gold: '6' },
  ])('$name', ({ answer, gold }) => {
    expect(verifyMath(`\\boxed{${answer}}`, gold).verdict).not.toBe('correct');
  });

  test('many boxes: only the last one counts', () => {
    const boxes = many.map((k) => `\\boxed{${k}}`).join(' ');
    expect(verifyMath(boxes, '37').verdict).toBe('incorrect');
    expect(verifyMath(boxes, '100').verdict).toBe('correct');
  });
});

describe('normalizeAnswer joins thousands groups', () => {
  test.each([
    ['45\\,000', '45000'],
    ['1\\ 000', '1000'],
    ['1\\;000\\;000', '1000000'],
    [`12${NNBSP}345`, '12345'],
    ['10,\\!080', '10080'],
    ['x^2 100', 'x^2 100'],
    ['2 100/200', '2\\frac{100}{200}'],
  ])('%j → %j', (input, output) => {
    expect(normalizeAnswer(input)).toBe(output);
  });
});
