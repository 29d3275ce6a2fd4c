/**
 * Distillery's own procedurally generated arithmetic benchmark.
 *
 * - Problems are `Compute A+B.` / `Compute A-B.` with exact integer answers (as strings). A model is asked a problem
 *   with R1's math instruction after it (`posedArithmeticPrompt`), the same in training and in evaluation, so a
 *   baseline that never saw the task is scored on arithmetic, not on guessing the answer format.
 * - Generation is deterministic from a seed (own PRNG, never Math.random).
 * - The train / heldout split is a property of the PROBLEM, not of the seed: a problem's split is decided by a
 *   hash of its canonical operand pair (for `+` the unordered pair, so `47+85` and `85+47` always land in the same
 *   split). Two splits generated with any seeds are therefore disjoint by construction.
 * - `solveWithReasoning` is the reasoning format taught to the student: compact schoolbook column arithmetic.
 *
 * Pure module: no I/O, safe to import from workflows, activities and tools.
 */

export type ArithOp = '+' | '-';
export type ArithSplit = 'train' | 'heldout';

export interface ArithmeticProblem {
  /** Stable id, e.g. `arith-47+85`. */
  id: string;
  /** e.g. `Compute 47+85.` */
  prompt: string;
  /** Exact answer as a decimal string, e.g. `132`. */
  answer: string;
  /** Number of carries (for `+`, including a carry out of the top column) or borrows (for `-`). */
  difficulty: number;
}

export interface GenerateArithmeticOptions {
  seed: number;
  count: number;
  split: ArithSplit;
  /** Digits per operand (1..12). 1 → operands 0..9; d ≥ 2 → 10^(d-1)..10^d-1. Default 2. */
  digits?: number;
  /** Operations to draw from. Default ['+']. Subtraction problems always have A ≥ B. */
  ops?: ArithOp[];
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Seeded PRNG and hashing                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

/** murmur3 32-bit finaliser. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Deterministic 32-bit hash of a string (FNV-1a over UTF-16 code units, then murmur3 fmix32). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** mulberry32: small, fast, seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PRNG seeded from any list of values (hashed together). */
export function rngFrom(...parts: Array<string | number>): () => number {
  return mulberry32(hashString(parts.map(String).join('\u001f')));
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Problem helpers                                                                                                */
/* ------------------------------------------------------------------------------------------------------------ */

/** Percentage of the problem space assigned to the heldout split. */
export const HELDOUT_PERCENT = 20;

/** Which split a problem belongs to. Independent of any seed; `+` is keyed on the unordered pair. */
export function splitOf(a: number, op: ArithOp, b: number): ArithSplit {
  const key = op === '+' ? `${Math.min(a, b)}+${Math.max(a, b)}` : `${a}-${b}`;
  return hashString(`arith-split:${key}`) % 100 < HELDOUT_PERCENT ? 'heldout' : 'train';
}

export function computeAnswer(a: number, op: ArithOp, b: number): number {
  return op === '+' ? a + b : a - b;
}

export function problemId(a: number, op: ArithOp, b: number): string {
  return `arith-${a}${op}${b}`;
}

export function formatArithmeticPrompt(a: number, op: ArithOp, b: number): string {
  return `Compute ${a}${op}${b}.`;
}

/** DeepSeek-R1's instruction for math problems, in the user turn after the problem (R1 uses no system prompt). */
export const R1_MATH_INSTRUCTION = 'Please reason step by step, and put your final answer within \\boxed{}.';

/**
 * The user turn every model gets for a builtin problem: the teacher when it writes the training data (so the
 * student is trained on the prompt it is evaluated with), and the baseline, the student and the teacher on the
 * held-out split.
 */
export function posedArithmeticPrompt(problem: Pick<ArithmeticProblem, 'prompt'>): string {
  return `${problem.prompt}\n${R1_MATH_INSTRUCTION}`;
}

function digitsOf(n: number): number[] {
  // least significant first
  return String(n).split('').reverse().map(Number);
}

/** Carries (for `+`, including one out of the top column) or borrows (for `-`; for A<B those of B-A). */
export function countCarries(a: number, op: ArithOp, b: number): number {
  if (op === '-' && a < b) return countCarries(b, '-', a);
  const da = digitsOf(a);
  const db = digitsOf(b);
  const n = Math.max(da.length, db.length);
  let c = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = da[i] ?? 0;
    const y = db[i] ?? 0;
    if (op === '+') {
      c = x + y + c >= 10 ? 1 : 0;
    } else {
      c = x - y - c < 0 ? 1 : 0;
    }
    count += c;
  }
  return count;
}

export interface ParsedArithmetic {
  a: number;
  op: ArithOp;
  b: number;
}

const NUM = '(\\d{1,15})';
const PROMPT_RES: RegExp[] = [
  new RegExp(`(?:compute|calculate|evaluate|what\\s+is)\\s*:?\\s*${NUM}\\s*([+\\-\\u2212])\\s*${NUM}`, 'i'),
  new RegExp(`^\\s*${NUM}\\s*([+\\-\\u2212])\\s*${NUM}\\s*(?:=\\s*\\??)?\\s*[.?]?\\s*$`),
];

/**
 * Parses `Compute A+B.` / `Compute A-B.` (also `Calculate`, `Evaluate`, `What is`, or a bare `A+B` / `A-B=?`
 * message). Returns null when the text is not such a question.
 */
export function parseArithmeticPrompt(text: string): ParsedArithmetic | null {
  for (const re of PROMPT_RES) {
    const m = re.exec(text);
    if (m) {
      const a = Number(m[1]);
      const b = Number(m[3]);
      const op: ArithOp = m[2] === '+' ? '+' : '-';
      if (Number.isSafeInteger(a) && Number.isSafeInteger(b)) return { a, op, b };
    }
  }
  return null;
}

/** The content of the last `\boxed{...}` in a text (trimmed), or null. */
export function extractBoxedAnswer(text: string): string | null {
  const re = /\\boxed\{([^{}]*)\}/g;
  let last: string | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) last = m[1].trim();
  return last;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Column arithmetic with reasoning trace                                                                         */
/* ------------------------------------------------------------------------------------------------------------ */

/** A deliberate slip, used by the procedural teacher to emulate sampling errors. */
export type ColumnMistake = { kind: 'off-by-one'; delta: 1 | -1 } | { kind: 'forgot-carry' };

export interface ColumnStepContext {
  /** 0 = ones column. */
  column: number;
  isLast: boolean;
  op: ArithOp;
  digitA: number;
  digitB: number;
  /** Incoming carry (for `+`) or borrow (for `-`). */
  carryIn: 0 | 1;
}

export interface TraceOptions {
  /**
   * Called once per column; return a mistake to make in that column (or null). `forgot-carry` is ignored when
   * carryIn is 0. An off-by-one whose result would leave the valid range flips its sign. Every mistake changes the
   * final answer by exactly ±10^column, so distinct-column mistakes can never cancel: any mistake ⇒ wrong answer.
   */
  mistakeAt?: (ctx: ColumnStepContext) => ColumnMistake | null;
  /** Text put before the first step inside <think>, e.g. `Ones first. ` (include trailing space). */
  preamble?: string;
  /** Final line; `{answer}` is replaced by the answer. Default `The answer is \boxed{{answer}}.` */
  closing?: string;
}

export interface AppliedMistake {
  column: number;
  mistake: ColumnMistake;
}

export interface SolutionTrace {
  /** Reasoning without the <think> tags. */
  reasoning: string;
  /** Final line, e.g. `The answer is \boxed{132}.` */
  summary: string;
  /** `<think>${reasoning}</think>\n${summary}` */
  text: string;
  /** The answer the trace arrives at (wrong iff mistakes is non-empty). */
  answer: string;
  mistakes: AppliedMistake[];
}

export const DEFAULT_CLOSING = 'The answer is \\boxed{{answer}}.';

function stripLeadingZeros(s: string): string {
  const t = s.replace(/^0+/, '');
  return t === '' ? '0' : t;
}

/**
 * Schoolbook column arithmetic, digit by digit from the ones column, producing the compact reasoning text.
 * Operands must be non-negative safe integers.
 */
export function traceColumnArithmetic(a: number, op: ArithOp, b: number, opts: TraceOptions = {}): SolutionTrace {
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || a < 0 || b < 0) {
    throw new RangeError(`operands must be non-negative safe integers, got ${a} and ${b}`);
  }
  const closing = opts.closing ?? DEFAULT_CLOSING;
  const preamble = opts.preamble ?? '';
  let prefix = '';
  let negate = false;
  let x = a;
  let y = b;
  if (op === '-' && a < b) {
    prefix = `${a}<${b}, so compute ${b}-${a} and negate. `;
    negate = true;
    x = b;
    y = a;
  }
  const da = digitsOf(x);
  const db = digitsOf(y);
  const n = Math.max(da.length, db.length);
  const steps: string[] = [];
  const written: string[] = []; // index = column
  const mistakes: AppliedMistake[] = [];
  let carry: 0 | 1 = 0;
  for (let i = 0; i < n; i++) {
    const p = da[i] ?? 0;
    const q = db[i] ?? 0;
    const isLast = i === n - 1;
    let m: ColumnMistake | null =
      opts.mistakeAt?.({ column: i, isLast, op, digitA: p, digitB: q, carryIn: carry }) ?? null;
    if (m && m.kind === 'forgot-carry' && carry === 0) m = null;
    const cin: 0 | 1 = m?.kind === 'forgot-carry' ? 0 : carry;
    if (op === '+') {
      let s = p + q + cin;
      if (m?.kind === 'off-by-one') {
        s = s + m.delta < 0 ? s - m.delta : s + m.delta;
      }
      const lhs = cin ? `${p}+${q}+1` : `${p}+${q}`;
      if (isLast) {
        steps.push(`${lhs}=${s}, write ${s}.`);
        written[i] = String(s);
      } else if (s >= 10) {
        steps.push(`${lhs}=${s}, write ${s - 10} carry 1.`);
        written[i] = String(s - 10);
        carry = 1;
      } else {
        steps.push(`${lhs}=${s}, write ${s}.`);
        written[i] = String(s);
        carry = 0;
      }
    } else {
      const raw: number = p - q - cin;
      const borrow: boolean = raw < 0 && !isLast;
      let v = borrow ? raw + 10 : raw;
      if (m?.kind === 'off-by-one') {
        v = v + m.delta < 0 || v + m.delta > 9 ? v - m.delta : v + m.delta;
      }
      const lhs = `${borrow ? p + 10 : p}-${q}${cin ? '-1' : ''}`;
      steps.push(`${lhs}=${v}, write ${v}${borrow ? ' borrow 1' : ''}.`);
      written[i] = String(v);
      carry = borrow ? 1 : 0;
    }
    if (m) mistakes.push({ column: i, mistake: m });
  }
  let answer = stripLeadingZeros(written.slice().reverse().join(''));
  if (negate && answer !== '0') answer = `-${answer}`;
  const reasoning = `${preamble}${prefix}${steps.join(' ')}`;
  const summary = closing.split('{answer}').join(answer);
  return { reasoning, summary, text: `<think>${reasoning}</think>\n${summary}`, answer, mistakes };
}

/**
 * The teacher's canonical reasoning format, e.g. for 47+85:
 * `<think>7+5=12, write 2 carry 1. 4+8+1=13, write 13.</think>\nThe answer is \boxed{132}.`
 */
export function solveWithReasoning(a: number, op: ArithOp, b: number): string {
  return traceColumnArithmetic(a, op, b).text;
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Generator                                                                                                      */
/* ------------------------------------------------------------------------------------------------------------ */

/** Problem spaces up to this size are enumerated (exact sampling without replacement). */
const ENUMERATE_LIMIT = 250_000;

function operandRange(digits: number): [number, number] {
  return digits === 1 ? [0, 9] : [10 ** (digits - 1), 10 ** digits - 1];
}

function makeProblem(a: number, op: ArithOp, b: number): ArithmeticProblem {
  return {
    id: problemId(a, op, b),
    prompt: formatArithmeticPrompt(a, op, b),
    answer: String(computeAnswer(a, op, b)),
    difficulty: countCarries(a, op, b),
  };
}

/**
 * Deterministic sample (without replacement) of `count` problems from one split.
 * Throws RangeError when the split has fewer than `count` problems (or, for huge spaces, cannot be sampled).
 */
export function generateArithmeticProblems(opts: GenerateArithmeticOptions): ArithmeticProblem[] {
  const digits = opts.digits ?? 2;
  const ops: ArithOp[] = opts.ops && opts.ops.length > 0 ? [...new Set(opts.ops)].sort() : ['+'];
  const { count, split, seed } = opts;
  if (!Number.isInteger(digits) || digits < 1 || digits > 12)
    throw new RangeError(`digits must be 1..12, got ${digits}`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  if (split !== 'train' && split !== 'heldout')
    throw new RangeError(`split must be 'train' or 'heldout', got ${split}`);
  for (const op of ops) if (op !== '+' && op !== '-') throw new RangeError(`unsupported op ${String(op)}`);
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new RangeError(`seed must be a finite number`);
  if (count === 0) return [];

  const rng = rngFrom('arith-gen', seed, split, digits, ops.join(''));
  const [lo, hi] = operandRange(digits);
  const width = hi - lo + 1;
  const spaceSize = ops.reduce((acc, op) => acc + (op === '+' ? width * width : (width * (width + 1)) / 2), 0);

  if (spaceSize <= ENUMERATE_LIMIT) {
    const pool: Array<[number, ArithOp, number]> = [];
    for (const op of ops) {
      for (let a = lo; a <= hi; a++) {
        for (let b = lo; b <= (op === '-' ? a : hi); b++) {
          if (splitOf(a, op, b) === split) pool.push([a, op, b]);
        }
      }
    }
    if (count > pool.length) {
      throw new RangeError(
        `split '${split}' has only ${pool.length} problems for digits=${digits} ops=${ops.join(',')}`,
      );
    }
    // Partial Fisher-Yates.
    for (let i = 0; i < count; i++) {
      const j = i + Math.floor(rng() * (pool.length - i));
      const t = pool[i];
      pool[i] = pool[j];
      pool[j] = t;
    }
    return pool.slice(0, count).map(([a, op, b]) => makeProblem(a, op, b));
  }

  // Huge space: rejection sampling.
  const seen = new Set<string>();
  const out: ArithmeticProblem[] = [];
  const maxAttempts = count * 200 + 10_000;
  for (let attempt = 0; out.length < count && attempt < maxAttempts; attempt++) {
    const op = ops[Math.floor(rng() * ops.length)];
    let a = lo + Math.floor(rng() * width);
    let b = lo + Math.floor(rng() * width);
    if (op === '-' && a < b) [a, b] = [b, a];
    if (splitOf(a, op, b) !== split) continue;
    const id = problemId(a, op, b);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(makeProblem(a, op, b));
  }
  if (out.length < count) throw new RangeError(`could not sample ${count} distinct problems from split '${split}'`);
  return out;
}
