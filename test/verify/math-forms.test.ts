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
      expect(
        verifyMath(`Some reasoning first.\n\nSo the answer is $\\boxed{${pred}}$.`, gold).verdict === 'correct',
      ).toBe(expected);
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

table('a relation whose right side is the value', [
  r('AB = 10', '10', true),
  r('AB = 12', '10', false),
  r('ABC = 10', '10', true),
  r('[ABC] = 10', '10', true),
  r('f(2) = 6', '6', true),
  r('f(2) = 7', '6', false),
  r('P(3) = \\frac{1}{2}', '0.5', true),
  r('a_5 = 36', '36', true),
  r('S_{10} = 36', '36', true),
  r('\\theta = 30^\\circ', '30^\\circ', true),
  r('BC = 5\\sqrt{2}', '5\\sqrt2', true),
  r('AB = \\sqrt{100}', '10', true),
  r('6^2 = 36', '36', true),
  r('36 = 6^2', '36', true, 'a true statement whose sides are both 36'),
  r('x = 2 \\cdot 18 = 36', '36', true),
  r('x = 36', '36', true),
  r('36 = x', '36', true),
  r('\\angle ABC = 30^\\circ', '30', true),
  r('m\\angle B = 30^\\circ', '30^\\circ', true),
  r('\\overline{AB} = 10', '10', true),
  r('P(A) = 0.5', '\\frac12', true),
  // attacks and non-answers
  r('6^2 = 35', '35', false, 'a false statement states nothing'),
  r('6^2 = 35', '36', false),
  r('AB = 10 = 12', '10', false),
  r('AB = 10 = 12', '12', false),
  r('x = 1 = 36', '36', false),
  r('2x = 36', '36', false, 'an equation in the unknown, not its value'),
  r('x + 1 = 36', '36', false),
  r('\\sin x = \\frac12', '\\frac12', false),
  r('f(x) = 36', '36', false),
  r('x = 5 \\text{ or } x = 36', '36', false),
  r('x \\neq 36', '36', false),
  r('x > 36', '36', false),
  r('x \\ge 36', '36', false),
  r('x < 36', '36', false),
  r('x \\approx 36', '36', false, 'only an approximation is stated'),
  r('x = \\frac13 = 0.333', '\\frac13', false, 'a rounded value written with = contradicts the exact one'),
  r('\\angle ABC = 31^\\circ', '30', false),
]);

table('an approximation after the exact answer: only the exact part is compared', [
  r('2\\sqrt{2} \\approx 2.83', '2\\sqrt{2}', true),
  r('2\\sqrt{2} \\approx 2.83', '\\sqrt{8}', true),
  r('2\\sqrt{2} \\approx 2.8284271', '2\\sqrt{2}', true),
  r('x = 2\\sqrt{2} \\approx 2.83', '2\\sqrt{2}', true),
  r('\\frac{1}{3} \\approx 0.33', '\\frac13', true),
  r('\\pi \\approx 3.1416', '\\pi', true),
  r('\\pi \\approx 3.1415', '\\pi', true, 'truncated: within one unit of the last digit'),
  r('36 \\approx 36.0', '36', true),
  r('2\\sqrt{2} \\approx 2.83', '2.83', false, 'a rounded gold is not matched through the approximation (fail closed)'),
  r('\\pi \\approx 3.14', '3.14', false),
  r('2\\sqrt{2} \\approx 2.83', '2\\sqrt{3}', false),
  r('2\\sqrt{2} \\approx 3.5', '2\\sqrt{2}', false, 'a wrong approximation makes the answer inconsistent'),
  r('\\pi \\approx 3.13', '\\pi', false),
  r('x \\approx 2.83', '2\\sqrt{2}', false),
  r('x \\approx 2.83', '2.83', false, 'an approximation alone is not an exact answer'),
  r('\\approx 2.83', '2.83', false),
  r('2\\sqrt{2} \\approx 2.83 = 5', '2\\sqrt{2}', false),
  r('36 \\approx 35', '36', false),
  r('36 \\approx 35', '35', false),
]);

table('assignments for a tuple gold', [
  r('x=2, y=3, z=-1', '(2,3,-1)', true),
  r('x = 2, y = 3', '(2,3)', true),
  r('x = 2 \\text{ and } y = 3', '(2,3)', true),
  r('a = 1, b = \\frac{1}{2}', '\\left(1, \\frac12\\right)', true),
  r('r = 3, \\theta = \\frac{\\pi}{2}', '\\left( 3, \\frac{\\pi}{2} \\right)', true),
  r('x=2, y=3, z=1', '(2,3,-1)', false),
  r('x=3, y=2', '(2,3)', false),
  r('y=3, x=2', '(2,3)', false, 'names out of order: which component is which is a guess (fail closed)'),
  r('x=2, x=3', '(2,3)', false, 'one variable twice is a solution set, not a point'),
  r('x = 2 \\text{ or } y = 3', '(2,3)', false, 'alternatives, not a point'),
  r('x=2, y=3', '(2,3,-1)', false),
  r('x=2, y=3', '[2,3]', false, 'an interval is not a point'),
  r('(x, y) = (2, -1)', '(2,-1)', true),
  r('(x,y,z) = (1,2,3)', '(1,2,3)', true),
  r('(x, y) = (-1, 2)', '(2,-1)', false),
  r('(y, x) = (2, -1)', '(2,-1)', false, 'names out of order (fail closed)'),
  r('(x, x) = (2, -1)', '(2,-1)', false),
  r('(x, y) = (2, -1, 3)', '(2,-1)', false),
]);

table('ratios', [
  r('3:4', '3:4', true),
  r('3 : 4', '3:4', true),
  r('3 \\colon 4', '3:4', true),
  r('3\\!:\\!4', '3:4', true),
  r('\\frac{3}{4}', '3:4', true),
  r('0.75', '3:4', true),
  r('3:4', '\\frac34', true),
  r('3:4', '0.75', true),
  r('1:2:3', '1:2:3', true),
  r('4:3', '3:4', false),
  r('6:8', '3:4', false, 'ratios compare term by term (fail closed)'),
  r('4:3', '\\frac34', false),
  r('1:2:3', '1:3:2', false),
  r('1:2:3', '\\frac12', false),
  r('\\frac12', '1:2:3', false),
  r('3', '3:4', false),
  r('3:4', '3', false),
  r('3:4', '(3,4)', false),
]);

table('"or" between words stays text (it separates alternatives only in math)', [
  r('yes or no', 'Yes or no', true),
  r('\\text{even or odd}', '\\text{even or odd}', true),
  r('Yes', 'Yes or no', false),
  r('even', '\\text{even or odd}', false),
  r('Monday or Tuesday', '\\text{Monday}', false),
]);

describe('a point or value stated without a box', () => {
  const reasoning = 'We solve the system. Adding the equations gives $2x = 4$, so $x = 2$; then $y = -1$.';
  test.each([
    {
      name: 'last line concludes with the point',
      response: `${reasoning}\n\nTherefore, $(x, y) = (2, -1)$.`,
      gold: '(2,-1)',
      verdict: 'correct',
    },
    {
      name: 'wrong point',
      response: `${reasoning}\n\nTherefore, $(x, y) = (-1, 2)$.`,
      gold: '(2,-1)',
      verdict: 'incorrect',
    },
    {
      name: 'after </think>',
      response: `<think>\n${reasoning}\n</think>\n\nThe solution is $(x, y) = (2, -1)$.`,
      gold: '(2,-1)',
      verdict: 'correct',
    },
    {
      name: 'answer phrase with the point',
      response: `${reasoning}\n\nThe answer is $(x, y) = (2, -1)$.`,
      gold: '(2,-1)',
      verdict: 'correct',
    },
    {
      name: 'conclusion with a stated value',
      response: `${reasoning}\n\nThus $AB = 10$.`,
      gold: '10',
      verdict: 'correct',
    },
    {
      name: 'conclusion with an equation, not a value',
      response: `${reasoning}\n\nSo $2x = 10$.`,
      gold: '10',
      verdict: 'incorrect',
    },
    {
      name: 'two candidates in the conclusion',
      response: `${reasoning}\n\nTherefore $x = 1$ or $x = 2$.`,
      gold: '2',
      verdict: 'no_answer',
    },
    {
      name: 'conclusion not on the last line',
      response: `${reasoning}\n\nTherefore, $x = 2$.\n\nLet me now check the second case, which is harder.`,
      gold: '2',
      verdict: 'no_answer',
    },
    {
      name: 'a conclusion inside <think> only is a draft',
      response: `<think>\n${reasoning}\n\nTherefore, $x = 2$.\n</think>\n\nI could not finish checking the second case, so I stop here without stating a final result.`,
      gold: '2',
      verdict: 'no_answer',
    },
    {
      name: 'cut off inside <think>',
      response: `<think>\n${reasoning}\n\nTherefore, $x = 2$.`,
      gold: '2',
      verdict: 'no_answer',
    },
  ])('$name → $verdict', ({ response, gold, verdict }) => {
    expect(verifyMath(response, gold).verdict).toBe(verdict);
  });
});

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
    { name: 'two option letters', answer: 'A, B', gold: 'A' },
    { name: 'option letters with or', answer: '(A) \\text{ or } (C)', gold: 'C' },
    { name: 'option letters with and', answer: 'B \\text{ and } D', gold: '\\text{(B)}' },
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
