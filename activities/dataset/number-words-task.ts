/**
 * The builtin non-reasoning task: write a number in English words ("Write 4721 in words." → "four thousand seven
 * hundred twenty-one"). Answered directly, without a chain of thought, and still checkable offline by exact match.
 *
 * Like the arithmetic task, the train / heldout split is a property of the NUMBER (a hash of it), so splits drawn
 * with any seeds are disjoint by construction. Pure module: no I/O.
 */
import { hashString, rngFrom, type ArithSplit } from './arithmetic-task';

export interface NumberWordsProblem {
  /** Stable id, e.g. `words-4721`. */
  id: string;
  prompt: string;
  answer: string;
}

export interface GenerateNumberWordsOptions {
  seed: number;
  count: number;
  split: ArithSplit;
  /** Numbers are drawn from 0..maxValue (at most 999,999). Default 9999. */
  maxValue?: number;
}

export const NUMBER_WORDS_MAX = 999_999;
const HELDOUT_PERCENT = 20;
const ONES = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
  'ten',
  'eleven',
  'twelve',
  'thirteen',
  'fourteen',
  'fifteen',
  'sixteen',
  'seventeen',
  'eighteen',
  'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

function belowThousand(n: number): string {
  const parts: string[] = [];
  const h = Math.floor(n / 100);
  const r = n % 100;
  if (h) parts.push(`${ONES[h]} hundred`);
  if (r >= 20) parts.push(TENS[Math.floor(r / 10)] + (r % 10 ? `-${ONES[r % 10]}` : ''));
  else if (r || !h) parts.push(ONES[r]);
  return parts.join(' ');
}

/** American English without "and": 4721 → "four thousand seven hundred twenty-one". */
export function numberToWords(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > NUMBER_WORDS_MAX)
    throw new RangeError(`numberToWords: 0..${NUMBER_WORDS_MAX}, got ${n}`);
  const thousands = Math.floor(n / 1000);
  const rest = n % 1000;
  if (!thousands) return belowThousand(rest);
  return `${belowThousand(thousands)} thousand${rest ? ` ${belowThousand(rest)}` : ''}`;
}

export function numberWordsSplitOf(n: number): ArithSplit {
  return hashString(`words-split:${n}`) % 100 < HELDOUT_PERCENT ? 'heldout' : 'train';
}

export function formatNumberWordsPrompt(n: number): string {
  return `Write ${n} in words.`;
}

/** The number of a `Write N in words.` prompt, or null. */
export function parseNumberWordsPrompt(text: string): number | null {
  const m = /Write\s+(\d{1,6})\s+in\s+words\./.exec(text);
  return m ? Number(m[1]) : null;
}

function problemOf(n: number): NumberWordsProblem {
  return { id: `words-${n}`, prompt: formatNumberWordsPrompt(n), answer: numberToWords(n) };
}

/** Deterministic sample without replacement of `count` numbers of one split. */
export function generateNumberWordsProblems(opts: GenerateNumberWordsOptions): NumberWordsProblem[] {
  const maxValue = opts.maxValue ?? 9999;
  if (!Number.isInteger(maxValue) || maxValue < 1 || maxValue > NUMBER_WORDS_MAX)
    throw new RangeError(`maxValue must be 1..${NUMBER_WORDS_MAX}, got ${maxValue}`);
  const pool: number[] = [];
  for (let n = 0; n <= maxValue; n++) if (numberWordsSplitOf(n) === opts.split) pool.push(n);
  if (opts.count > pool.length)
    throw new RangeError(`split '${opts.split}' has only ${pool.length} numbers up to ${maxValue}`);
  const rng = rngFrom('words-gen', opts.seed, opts.split, maxValue);
  for (let i = 0; i < opts.count; i++) {
    const j = i + Math.floor(rng() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, opts.count).map(problemOf);
}
