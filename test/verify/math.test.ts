import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  extractAnswer,
  isEquivalent,
  normalizeAnswer,
  parseValue,
  verifyMath,
  type MathVerdict,
} from '../../activities/verify/math';

// ---------------------------------------------------------------------------------------------------------------
// isEquivalent(pred, gold): one row per case, positive and negative, grouped by category
// ---------------------------------------------------------------------------------------------------------------

interface EqRow {
  cat: string;
  pred: string;
  gold: string;
  expected: boolean;
}

const eq = (cat: string, pred: string, gold: string, expected: boolean): EqRow => ({ cat, pred, gold, expected });

const EQUIV_ROWS: EqRow[] = [
  // integers
  eq('integer', '42', '42', true),
  eq('integer', '43', '42', false),
  eq('integer', '-50', '-50', true),
  eq('integer', '50', '-50', false),
  eq('integer', '+5', '5', true),
  eq('integer', '-0', '0', true),
  eq('integer', '5.', '5', true),
  eq('integer', '5.0', '5', true),
  eq('integer', '5.01', '5', false),
  eq('integer', '2^{10}', '1024', true),
  eq('integer', '\\binom{5}{2}', '10', true),
  eq('integer', '5!', '120', true),
  eq('integer', '|-3|', '3', true),
  eq('integer', '27.0', '27', true),
  // decimals
  eq('decimal', '1.25', '1.25', true),
  eq('decimal', '1.250', '1.25', true),
  eq('decimal', '1.26', '1.25', false),
  eq('decimal', '0.35625', '.35625', true),
  eq('decimal', '.0000672', '.0000672', true),
  eq('decimal', '0.0000673', '.0000672', false),
  eq('decimal', '3.2100001', '3.21', true),
  eq('decimal', '3.22', '3.21', false),
  eq('decimal', '25', '0.25', false),
  eq('decimal', '0.1+0.2', '0.3', true),
  // fractions
  eq('fraction', '\\frac{14}{3}', '\\frac{14}{3}', true),
  eq('fraction', '14/3', '\\frac{14}{3}', true),
  eq('fraction', '\\dfrac{14}{3}', '\\frac{14}{3}', true),
  eq('fraction', '\\tfrac{1}{2}', '0.5', true),
  eq('fraction', '\\frac{28}{6}', '\\frac{14}{3}', true),
  eq('fraction', '\\frac{3}{14}', '\\frac{14}{3}', false),
  eq('fraction', '\\frac{15}{3}', '\\frac{14}{3}', false),
  eq('fraction', '\\frac43', '\\frac{4}{3}', true),
  eq('fraction', '\\frac 59', '5/9', true),
  eq('fraction', '\\frac9{19}', '\\frac{9}{19}', true),
  eq('fraction', '\\frac{270}{7}', '\\frac{270}7\\text{ degrees}', true),
  eq('fraction', '0.5', '\\frac{1}{2}', true),
  eq('fraction', '-\\frac{35}{9}', '-\\frac{35}{9}', true),
  eq('fraction', '\\frac{-35}{9}', '-\\frac{35}{9}', true),
  eq('fraction', '\\frac{35}{9}', '-\\frac{35}{9}', false),
  eq('fraction', '0.3333333', '\\frac13', true),
  eq('fraction', '0.333', '\\frac13', false),
  eq('fraction', '0.33', '\\frac{1}{3}', false),
  eq('fraction', '0.\\overline{3}', '\\frac13', true),
  eq('fraction', '\\frac{17}{50}', '\\dfrac{17}{50}', true),
  eq('fraction', '0.34', '\\dfrac{17}{50}', true),
  // mixed numbers
  eq('mixed', '2\\frac{1}{2}', '\\frac52', true),
  eq('mixed', '2\\frac{1}{2}', '1', false),
  eq('mixed', '137.5', '137 \\frac{1}{2}', true),
  eq('mixed', '\\frac{275}{2}', '137 \\frac{1}{2}', true),
  eq('mixed', '137', '137 \\frac{1}{2}', false),
  eq('mixed', '1.8', '1\\frac{4}{5}', true),
  eq('mixed', '\\frac{9}{5}', '1\\frac{4}{5}', true),
  eq('mixed', '\\frac{4}{5}', '1\\frac{4}{5}', false),
  eq('mixed', '-2\\frac{1}{2}', '-2.5', true),
  eq('mixed', '2 1/2', '2.5', true),
  // scientific notation
  eq('scientific', '6.72\\times10^{-5}', '.0000672', true),
  eq('scientific', '6.72 \\cdot 10^{-5}', '.0000672', true),
  eq('scientific', '6.72e-5', '.0000672', true),
  eq('scientific', '6.72\\times10^{-4}', '.0000672', false),
  eq('scientific', '1.5e3', '1500', true),
  eq('scientific', '2.5 \\times 10^{3}', '2500', true),
  eq('scientific', '10^{-3}', '0.001', true),
  // radicals, pi and other irrationals: exact forms equal, decimal approximations only within 1e-6
  eq('irrational', '3.14', '\\pi', false),
  eq('irrational', '3.1416', '\\pi', false),
  eq('irrational', '3.14159265', '\\pi', true),
  eq('irrational', '\\frac{22}{7}', '\\pi', false),
  eq('irrational', '1.414', '\\sqrt2', false),
  eq('irrational', '1.41421356', '\\sqrt{2}', true),
  eq('irrational', '\\sqrt{242}', '11\\sqrt2', true),
  eq('irrational', '11\\sqrt{2}', '11\\sqrt2', true),
  eq('irrational', '11\\sqrt{3}', '11\\sqrt2', false),
  eq('irrational', '\\sqrt{117}', '3\\sqrt{13}', true),
  eq('irrational', '2\\sqrt{13}+\\sqrt{13}', '3\\sqrt{13}', true),
  eq('irrational', '\\frac{\\sqrt 3}2', '\\frac{\\sqrt{3}}{2}', true),
  eq('irrational', '\\frac{1}{\\sqrt3}', '\\frac{\\sqrt{3}}{3}', true),
  eq('irrational', '0.577', '\\frac{\\sqrt{3}}{3}', false),
  eq('irrational', '0.8660254', '\\frac{\\sqrt3}{2}', true),
  eq('irrational', '2\\pi', '2\\pi', true),
  eq('irrational', '\\pi \\cdot 12', '12\\pi', true),
  eq('irrational', '6\\pi', '12\\pi', false),
  eq('irrational', '-\\pi/6', '-\\frac{\\pi}{6}', true),
  eq('irrational', '\\frac{\\pi}{6}', '-\\frac{\\pi}{6}', false),
  eq('irrational', '\\sqrt[3]{2}', '2^{1/3}', true),
  eq('irrational', 'e^{2}', '\\exp(2)', true),
  eq('irrational', '\\log_2 8', '3', true),
  eq('irrational', '\\frac{20000}{\\pi}', '\\frac{20000}{\\pi}', true),
  eq('irrational', '6366', '\\frac{20000}{\\pi}', false),
  eq('irrational', '1+\\sqrt{3}\\cdot 2', '1+2\\sqrt{3}', true),
  // complex numbers
  eq('complex', '6-5i', '6 - 5i', true),
  eq('complex', '-5i+6', '6 - 5i', true),
  eq('complex', '6+5i', '6 - 5i', false),
  eq('complex', '2i', '\\sqrt{-4}', true),
  // expressions with variables
  eq('expression', '-q+p', 'p - q', true),
  eq('expression', 'q - p', 'p - q', false),
  eq('expression', '(x-1)(x^4+x^2+1)', 'x^5 - x^4 + x^3 - x^2 + x - 1', true),
  eq('expression', 'x^5 - x^4 + x^3 - x^2 + x + 1', 'x^5 - x^4 + x^3 - x^2 + x - 1', false),
  eq('expression', 'ab+2a+5b+10', '(a+5)(b+2)', true),
  eq('expression', 'ab+5a+2b+10', '(a+5)(b+2)', false),
  eq('expression', '\\frac{\\cos x}{\\sin x}', '\\cot x', true),
  eq('expression', '\\tan x', '\\cot x', false),
  eq('expression', '2(k+1)', '2k+2', true),
  eq('expression', '2n+2', '2k+2', false),
  eq('expression', '\\frac{9a+11}{20}', '\\frac{11+9a}{20}', true),
  eq('expression', '0.5x', '\\frac{x}{2}', true),
  eq('expression', '\\sin^2 x + \\cos^2 x', '1', true),
  eq('expression', '3r^2', '3R^2', false),
  // tuples / points (ordered)
  eq('tuple', '(6, 31, -1)', '(6,31,-1)', true),
  eq('tuple', '(31, 6, -1)', '(6,31,-1)', false),
  eq('tuple', '(6,31)', '(6,31,-1)', false),
  eq('tuple', '(3,\\pi/2)', '\\left( 3, \\frac{\\pi}{2} \\right)', true),
  eq('tuple', '(3, 1.5708)', '\\left( 3, \\frac{\\pi}{2} \\right)', false),
  eq('tuple', '\\left(\\frac32,-13\\right)', '\\left( \\frac{3}{2}, -13 \\right)', true),
  eq('tuple', '(1.5, -13)', '\\left( \\frac{3}{2}, -13 \\right)', true),
  eq('tuple', '(-13, 1.5)', '\\left( \\frac{3}{2}, -13 \\right)', false),
  eq('tuple', '15,-29', '(15,-29)', false),
  // intervals (open vs closed matters)
  eq('interval', '(3,4]', '(3,4]', true),
  eq('interval', '(3,4)', '(3,4]', false),
  eq('interval', '[3,4]', '(3,4]', false),
  eq('interval', '(2, \\infty)', '(2,\\infty)', true),
  eq('interval', '[2,\\infty)', '(2,\\infty)', false),
  eq('interval', '(-\\infty,0]', '(-\\infty, 0]', true),
  eq('interval', '(-\\infty,0)', '(-\\infty, 0]', false),
  eq('interval', '\\left(0.6,\\frac83\\right]', '\\left(\\frac{3}{5},\\frac{8}{3}\\right]', true),
  eq('interval', '[-2,7]', 'x \\in [-2,7]', true),
  eq('interval', '-2 \\le x \\le 7', 'x \\in [-2,7]', true),
  eq('interval', '-2 < x \\le 7', 'x \\in [-2,7]', false),
  eq('interval', '(3,\\infty)\\cup(-\\infty,2)', '(-\\infty, 2) \\cup (3, \\infty)', true),
  eq('interval', '(-\\infty, 2] \\cup (3, \\infty)', '(-\\infty, 2) \\cup (3, \\infty)', false),
  eq('interval', 'x<2 \\text{ or } x>3', '(-\\infty, 2) \\cup (3, \\infty)', true),
  eq('interval', '\\mathbb{R}', '(-\\infty,\\infty)', true),
  // inequalities
  eq('inequality', '(3,\\infty)', 'x>3', true),
  eq('inequality', '3 < x', 'x>3', true),
  eq('inequality', 'x \\ge 3', 'x>3', false),
  eq('inequality', 'x<3', 'x>3', false),
  eq('inequality', 'x \\geq 3', '[3,\\infty)', true),
  // sets and solution lists (order-free)
  eq('set', '\\{2,1\\}', '\\{1,2\\}', true),
  eq('set', '\\{1,2,3\\}', '\\{1,2\\}', false),
  eq('set', '7, 5, 3', '3, 5, 7', true),
  eq('set', '3, 5', '3, 5, 7', false),
  eq('set', '\\{3,5,7\\}', '3, 5, 7', true),
  eq('set', '-2, 1', '1,-2', true),
  eq('set', 'x=1, x=-2', '1,-2', true),
  eq('set', '1, 2', '1,-2', false),
  eq('set', '1+\\sqrt{19}, 1-\\sqrt{19}', '1 \\pm \\sqrt{19}', true),
  eq('set', '1+\\sqrt{19}', '1 \\pm \\sqrt{19}', false),
  eq('set', '\\{-2, 1-\\sqrt5, 1+\\sqrt5\\}', '\\{1\\pm\\sqrt{5},-2\\}', true),
  eq('set', '\\emptyset', '\\{\\}', true),
  // matrices and vectors
  eq(
    'matrix',
    '\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}',
    '\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}',
    true,
  ),
  eq(
    'matrix',
    '\\begin{pmatrix} 1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}',
    '\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}',
    false,
  ),
  eq('matrix', '(-1/3, 2/3, 5/3)', '\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}', true),
  eq(
    'matrix',
    '\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}',
    '\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}',
    true,
  ),
  eq(
    'matrix',
    '\\begin{pmatrix} 0 & -1 \\\\ -1 & 0 \\end{pmatrix}',
    '\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}',
    false,
  ),
  // equations
  eq('equation', '3', 'x=5', false),
  eq('equation', '5', 'x=5', true),
  eq('equation', 'x=3', '3', true),
  eq('equation', 'y = 3', '3', true),
  eq('equation', 'x=4', '3', false),
  eq('equation', 'y=2x+3', 'y = 2x + 3', true),
  eq('equation', '2x - y + 3 = 0', 'y = 2x + 3', true),
  eq('equation', '2x+3', 'y = 2x + 3', true),
  eq('equation', 'y=2x+4', 'y = 2x + 3', false),
  eq('equation', 'y = 2', 'x=2', false),
  eq('equation', '-5x+7y-11z-4=0', '5x - 7y + 11z + 4 = 0', true),
  eq('equation', '5x - 7y + 11z - 4 = 0', '5x - 7y + 11z + 4 = 0', false),
  // percent
  eq('percent', '25\\%', '25', true),
  eq('percent', '25', '25\\%', true),
  eq('percent', '0.25', '25\\%', true),
  eq('percent', '50\\%', '\\frac12', true),
  eq('percent', '25 percent', '25\\%', true),
  eq('percent', '26\\%', '25\\%', false),
  // units, degrees, currency
  eq('units', '5 cm', '5', true),
  eq('units', '864', '864 \\mbox{ inches}^2', true),
  eq('units', '864 square inches', '864 \\mbox{ inches}^2', true),
  eq('units', '15', '15\\mbox{ cm}^2', true),
  eq('units', '16', '15\\mbox{ cm}^2', false),
  eq('units', '5.4', '5.4 \\text{ cents}', true),
  eq('units', '5.5 cents', '5.4 \\text{ cents}', false),
  eq('degrees', '90', '90^\\circ', true),
  eq('degrees', '90^{\\circ}', '90^\\circ', true),
  eq('degrees', '90 degrees', '90^\\circ', true),
  eq('degrees', '30°', '30^\\circ', true),
  eq('degrees', '91', '90^\\circ', false),
  eq('currency', '32348', '\\$32,\\!348', true),
  eq('currency', '\\$32,348', '\\$32,\\!348', true),
  eq('currency', '32,349', '\\$32,\\!348', false),
  eq('currency', '18.9', '\\$18.90', true),
  eq('currency', '5 dollars', '\\$5', true),
  // thousands separators vs tuples
  eq('thousands', '10080', '10,\\!080', true),
  eq('thousands', '10,080', '10080', true),
  eq('thousands', '11111111100', '11,\\! 111,\\! 111,\\! 100', true),
  eq('thousands', '1,000', '1000', true),
  eq('thousands', '1,234,567', '1234567', true),
  eq('thousands', '58{,}500', '58,500', true),
  eq('thousands', '1, 2', '12', false),
  eq('thousands', '1,000', '1', false),
  // multiple choice
  eq('choice', '(C)', '\\text{(C)}', true),
  eq('choice', 'C', '\\text{(C)}', true),
  eq('choice', 'C)', '\\text{(C)}', true),
  eq('choice', '\\textbf{(C)}', '\\text{(C)}', true),
  eq('choice', '(C) 12', '\\text{(C)}', true),
  eq('choice', 'B', '\\text{(C)}', false),
  eq('choice', '(B)', '\\text{(C)}', false),
  eq('choice', '(B)', 'B', true),
  // base-b numerals
  eq('base', '2516_{8}', '2516_8', true),
  eq('base', '2516', '2516_8', true),
  eq('base', '2517_8', '2516_8', false),
  eq('base', '1358', '2516_8', false),
  // plain text
  eq('text', 'Evelyn', '\\text{Evelyn}', true),
  eq('text', '\\text{evelyn}', '\\text{Evelyn}', true),
  eq('text', 'Navin', '\\text{Evelyn}', false),
  eq('text', 'East', '\\text{east}', true),
  eq('text', 'west', '\\text{east}', false),
  eq('text', '\\text{ellipse}', '\\text{ellipse}', true),
  eq('text', 'parabola', '\\text{ellipse}', false),
  eq('text', 'odd', '\\text{even}', false),
  // fail closed: gold that cannot be parsed is never equal, not even to itself
  eq('fail-closed', '5', '', false),
  eq('fail-closed', '\\frac{1}{', '\\frac{1}{', false),
  eq('fail-closed', '5', '\\int_0^1 x\\,dx', false),
  eq('fail-closed', 'x^2 + \\foo', 'x^2 + \\foo', false),
  // unparseable prediction
  eq('bad-pred', '\\frac{1}{', '\\frac{1}{2}', false),
  eq('bad-pred', '', '5', false),
];

describe('isEquivalent', () => {
  test.each(EQUIV_ROWS)('[$cat] $pred vs $gold → $expected', ({ pred, gold, expected }) => {
    const r = isEquivalent(pred, gold);
    expect({ equal: r.equal, reason: r.reason }).toEqual({ equal: expected, reason: expect.any(String) });
  });
});

// ---------------------------------------------------------------------------------------------------------------
// extractAnswer(response)
// ---------------------------------------------------------------------------------------------------------------

interface ExRow {
  name: string;
  response: string;
  answer: string | null;
}

const EXTRACT_ROWS: ExRow[] = [
  { name: 'simple boxed', response: 'So the total is \\boxed{42}.', answer: '42' },
  { name: 'last boxed wins', response: 'First \\boxed{3}, then corrected: \\boxed{4}.', answer: '4' },
  { name: 'nested braces', response: 'Thus $\\boxed{\\frac{\\sqrt{3}}{2}}$', answer: '\\frac{\\sqrt{3}}{2}' },
  { name: 'nested boxed', response: 'so \\boxed{\\boxed{5}}', answer: '5' },
  { name: 'escaped set braces', response: '\\boxed{\\{1, 2\\}}', answer: '\\{1, 2\\}' },
  {
    name: 'matrix in boxed',
    response: '\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}',
    answer: '\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}',
  },
  { name: 'fbox', response: 'So \\fbox{7}.', answer: '7' },
  { name: 'boxed without braces', response: 'We get \\boxed 5.', answer: '5' },
  {
    name: 'boxed in think, final boxed after',
    response: '<think>maybe \\boxed{3}? no.</think>\nThe answer is \\boxed{4}.',
    answer: '4',
  },
  {
    name: 'boxed in think, final phrase after',
    response: '<think>draft: \\boxed{3}</think>\n\nSo the answer is 4.',
    answer: '4',
  },
  { name: 'boxed only in think', response: '<think>I get \\boxed{3}</think>', answer: '3' },
  { name: 'text after </think> (short)', response: 'reasoning ... </think>\n\n42', answer: '42' },
  { name: 'bold after </think>', response: 'reasoning ... </think>\n\n**42**', answer: '42' },
  { name: 'unclosed think = truncated', response: '<think>long reasoning, \\boxed{3} maybe, not done', answer: null },
  {
    name: 'minerva format',
    response: 'work\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.',
    answer: '\\frac{1}{2}',
  },
  { name: 'answer colon markdown', response: 'Work.\n\n**Answer:** 42', answer: '42' },
  { name: 'the answer is', response: 'Hence the answer is $3.5$.', answer: '3.5' },
  { name: 'final answer is on next line', response: 'Final answer:\n\n$$x = 5$$', answer: 'x = 5' },
  { name: 'gsm8k hashes', response: 'She has 3 + 4 = 7 apples.\n#### 7', answer: '7' },
  { name: 'short response', response: '42', answer: '42' },
  {
    name: 'long text, no answer',
    response: 'a long text with no answer at all that goes on and on for more than forty characters',
    answer: null,
  },
  { name: 'empty', response: '', answer: null },
];

describe('extractAnswer', () => {
  test.each(EXTRACT_ROWS)('$name', ({ response, answer }) => {
    expect(extractAnswer(response).answer).toBe(answer);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// normalizeAnswer(s)
// ---------------------------------------------------------------------------------------------------------------

const NORMALIZE_ROWS: Array<{ input: string; gold?: string; output: string }> = [
  { input: '\\dfrac{1}{2}', output: '\\frac{1}{2}' },
  { input: '\\left( 1, 2 \\right]', output: '( 1, 2 ]' },
  { input: '10,\\!080', output: '10080' },
  { input: '1,000', output: '1000' },
  { input: '1, 2', output: '1, 2' },
  { input: '90^\\circ', output: '90' },
  { input: '25\\%', output: '25' },
  { input: '\\$18.90', output: '18.90' },
  { input: '5.4 \\text{ cents}', output: '5.4' },
  { input: '15\\mbox{ cm}^2', output: '15' },
  { input: '$x = 3$.', output: 'x = 3' },
  { input: 'x = 3', gold: '3', output: '3' },
  { input: 'x = 3', gold: 'x=3', output: 'x = 3' },
  { input: '\\text{east}', output: 'east' },
  { input: '\\boxed{7}', output: '7' },
];

describe('normalizeAnswer', () => {
  test.each(NORMALIZE_ROWS)('$input → $output', ({ input, gold, output }) => {
    expect(normalizeAnswer(input, gold)).toBe(output);
  });
});

describe('parseValue', () => {
  test.each([
    ['42', 'scalar'],
    ['(1,2]', 'tuple'],
    ['\\{1,2\\}', 'list'],
    ['1 \\pm \\sqrt{2}', 'list'],
    ['\\begin{pmatrix}1\\\\2\\end{pmatrix}', 'matrix'],
    ['y = 2x+3', 'relation'],
    ['\\text{(B)}', 'choice'],
    ['52_8', 'base'],
    ['\\text{Evelyn}', 'text'],
  ])('%s is a %s', (s, kind) => {
    expect(parseValue(s)?.kind).toBe(kind);
  });
  test.each(['', '\\frac{1}{', '\\int_0^1 f', '\\unknowncommand{3}'])('%j is not comparable', (s) => {
    expect(parseValue(s)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------------------
// verifyMath(response, gold): verdicts
// ---------------------------------------------------------------------------------------------------------------

const LONG_REASONING =
  'We need the number of ways. First, count the arrangements of the letters: there are $5!$ of them, but the two ' +
  'As are identical, so we divide by $2!$. That gives $60$. Hmm, wait, I should double check whether the problem ' +
  'counts rotations as distinct. It does not say so, so I will assume it does.';

const VERIFY_ROWS: Array<{ name: string; response: string; gold: string; verdict: MathVerdict }> = [
  {
    name: 'R1-style correct',
    response: `<think>\n${LONG_REASONING}\n</think>\n\nThe answer is $\\boxed{60}$.`,
    gold: '60',
    verdict: 'correct',
  },
  {
    name: 'R1-style wrong',
    response: `<think>\n${LONG_REASONING}\n</think>\n\nThe answer is $\\boxed{120}$.`,
    gold: '60',
    verdict: 'incorrect',
  },
  {
    name: 'right draft in think, wrong final',
    response: '<think>\\boxed{60} hmm no</think>\nFinal: \\boxed{30}',
    gold: '60',
    verdict: 'incorrect',
  },
  {
    name: 'wrong draft in think, right final',
    response: '<think>\\boxed{30} hmm no</think>\nFinal: \\boxed{60}',
    gold: '60',
    verdict: 'correct',
  },
  { name: 'truncated', response: `<think>\n${LONG_REASONING}`, gold: '60', verdict: 'no_answer' },
  { name: 'no answer', response: LONG_REASONING, gold: '60', verdict: 'no_answer' },
  { name: 'unparseable gold', response: '\\boxed{5}', gold: '\\frac{5}{', verdict: 'unparseable_gold' },
  { name: 'empty gold', response: '\\boxed{5}', gold: '', verdict: 'unparseable_gold' },
  { name: 'unknown LaTeX gold', response: '\\boxed{\\foo 5}', gold: '\\foo 5', verdict: 'unparseable_gold' },
  {
    name: 'gold with #### marker',
    response: 'The answer is 18.',
    gold: 'Janet sells 16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18',
    verdict: 'correct',
  },
  {
    name: 'gold as a boxed solution',
    response: '\\boxed{\\frac12}',
    gold: 'So $p = \\boxed{0.5}$.',
    verdict: 'correct',
  },
  { name: 'interval', response: 'Thus $x \\in \\boxed{(2, \\infty)}$.', gold: '(2,\\infty)', verdict: 'correct' },
  { name: 'choice', response: 'The correct option is \\boxed{\\textbf{(C)}}', gold: '\\text{(C)}', verdict: 'correct' },
];

describe('verifyMath', () => {
  test.each(VERIFY_ROWS)('$name → $verdict', ({ response, gold, verdict }) => {
    const v = verifyMath(response, gold);
    expect(v.verdict).toBe(verdict);
    expect(typeof v.reason).toBe('string');
  });

  test('never correct when the gold is unparseable, whatever the response', () => {
    for (const gold of ['', '   ', '\\frac{1}{', '\\int_0^1 x\\,dx', '\\unknown{2}', 'x^2 + \\foo']) {
      for (const resp of ['\\boxed{5}', `\\boxed{${gold}}`, gold, ''])
        expect(verifyMath(resp, gold).verdict).not.toBe('correct');
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Labelled corpus (see README.md in this folder)
// ---------------------------------------------------------------------------------------------------------------

interface CorpusRow {
  response: string;
  gold: string;
  label: boolean;
  category: string;
}

/**
 * The corpus is built at test time into a temp dir by make-corpus.mjs from the benchmarks' gold answers (never
 * committed: the benchmark files must not be). CI has ../shared/data/benchmarks beside the clone;
 * DISTILLERY_BENCHMARKS overrides the folder.
 */
const repoRoot = path.resolve(__dirname, '..', '..');
const benchDir = process.env.DISTILLERY_BENCHMARKS ?? path.join(repoRoot, '..', 'shared', 'data', 'benchmarks');

describe('labelled corpus', () => {
  let rows: CorpusRow[] = [];
  let tmp = '';
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'distillery-corpus-'));
    const out = path.join(tmp, 'math-corpus.jsonl');
    execFileSync(process.execPath, [path.join(__dirname, 'make-corpus.mjs'), benchDir, '--out', out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    rows = fs
      .readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as CorpusRow);
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('has at least 300 rows, both labels in every category', () => {
    expect(rows.length).toBeGreaterThanOrEqual(300);
    const byCat = new Map<string, Set<boolean>>();
    for (const r of rows) byCat.set(r.category, (byCat.get(r.category) ?? new Set()).add(r.label));
    const oneSided = [...byCat].filter(
      ([cat, labels]) => labels.size < 2 && !['unparseable_gold', 'no_answer'].includes(cat),
    );
    expect(oneSided).toEqual([]);
  });

  test('accuracy ≥ 99%', () => {
    let right = 0;
    const wrong: string[] = [];
    for (const r of rows) {
      const v = verifyMath(r.response, r.gold);
      if ((v.verdict === 'correct') === r.label) right++;
      else
        wrong.push(
          `[${r.category}] label=${r.label} gold=${JSON.stringify(r.gold)} extracted=${JSON.stringify(v.extracted)} ${v.verdict}: ${v.reason}`,
        );
    }
    const pct = (100 * right) / rows.length;
    console.log(
      `math verifier accuracy: ${right}/${rows.length} = ${pct.toFixed(2)}%${wrong.length ? '\n' + wrong.join('\n') : ''}`,
    );
    expect(pct).toBeGreaterThanOrEqual(99);
  });
});
