/**
 * Procedural teacher: an honest, rule-based stand-in for a reasoning LLM on Distillery's arithmetic task.
 *
 * It is NOT a language model. It parses `Compute A+B.` / `Compute A-B.`, solves it with schoolbook column
 * arithmetic (the same reasoning format as `solveWithReasoning`), and — to behave like a *sampled* LLM — it
 *   1. makes realistic mistakes (an off-by-one column result, a forgotten carry/borrow) with a probability per
 *      column step that grows with temperature:
 *
 *          p_step = min(0.5, baseErrorRate × temperature × top_p)        (baseErrorRate defaults to 0.08)
 *
 *      so temperature 0 never errs, temperature 1 errs on ~8% of column steps (≈15% of 2-digit answers wrong),
 *      temperature 1.5 on 12% (≈23% wrong). Each mistake changes the final answer by ±10^column, so a mistake always
 *      propagates to a wrong boxed answer that a verifier can reject;
 *   2. varies its surface phrasing when temperature > 0 (16 styles = 4 preambles × 4 closings, always with
 *      `\boxed{}`); within one request the choices take distinct styles round-robin from a seeded offset, so
 *      choices of one request differ (for n ≤ 16) even when all are correct. At temperature 0 output is greedy:
 *      canonical style, no mistakes, identical to `solveWithReasoning`.
 *
 * Randomness comes only from a PRNG seeded by (request seed, prompt, choice index): same request + same seed ⇒
 * same output. Unparseable questions get `<think>I cannot solve this.</think>\nI don't know.`
 */
import {
  ArithOp,
  ColumnMistake,
  ColumnStepContext,
  DEFAULT_CLOSING,
  computeAnswer,
  hashString,
  parseArithmeticPrompt,
  rngFrom,
  traceColumnArithmetic,
} from '../../activities/dataset/arithmetic-task';
import { numberToWords, parseNumberWordsPrompt } from '../../activities/dataset/number-words-task';

export const DEFAULT_BASE_ERROR_RATE = 0.08;
export const MAX_STEP_ERROR_RATE = 0.5;

export const CANNOT_SOLVE_REASONING = 'I cannot solve this.';
export const CANNOT_SOLVE_ANSWER = "I don't know.";

/** Per-column-step mistake probability: min(0.5, base × temperature × top_p), clamped to [0, 0.5]. */
export function errorProbabilityPerStep(
  temperature: number,
  topP = 1,
  baseErrorRate = DEFAULT_BASE_ERROR_RATE,
): number {
  const p = baseErrorRate * Math.max(0, temperature) * Math.min(1, Math.max(0, topP));
  return Math.min(MAX_STEP_ERROR_RATE, Math.max(0, p));
}

const PREAMBLES: Record<ArithOp, string[]> = {
  '+': ['', 'Ones first. ', 'Column by column. ', 'Add right to left. '],
  '-': ['', 'Ones first. ', 'Column by column. ', 'Subtract right to left. '],
};
const CLOSINGS = [
  DEFAULT_CLOSING,
  'So the answer is \\boxed{{answer}}.',
  'Answer: \\boxed{{answer}}.',
  'Therefore \\boxed{{answer}}.',
];
export const STYLE_COUNT = 16;
/** Stride coprime with STYLE_COUNT, so choice indices 0..15 of one request visit every style once. */
const STYLE_STRIDE = 5;

export type ReasoningFormat = 'inline' | 'separate';

export interface TeacherRequest {
  /** The question (text of the last user message). */
  prompt: string;
  /** 0..2; default 1. */
  temperature?: number;
  /** 0..1; default 1. */
  topP?: number;
  /** Request seed (any integer or string). */
  seed: number | string;
  /** Index of this choice within the request (0-based). */
  choiceIndex: number;
  /** 'inline' (default): reasoning inside <think>…</think> in content. 'separate': DeepSeek-style reasoning_content. */
  reasoningFormat?: ReasoningFormat;
  baseErrorRate?: number;
  /** Vary phrasing at temperature > 0 (default true). */
  styleVariation?: boolean;
}

export interface TeacherResponse {
  /** Message content: full `<think>…</think>\n…` text (inline) or the summary only (separate). */
  content: string;
  /** Present only for reasoningFormat 'separate': the reasoning without tags. */
  reasoningContent?: string;
  /** Parsed problem, or null when the question was not understood. */
  problem: { a: number; op: ArithOp; b: number } | null;
  /** Answer the teacher committed to (null when it could not solve). */
  givenAnswer: string | null;
  /** The exact answer (null when not parsed). */
  correctAnswer: string | null;
  /** Number of mistakes made (0 ⇒ givenAnswer === correctAnswer). */
  mistakes: number;
  /** Style index used (0 = canonical). */
  style: number;
}

/** Style used by a choice: 0 at temperature 0 or without variation; otherwise (offset + 5·index) mod 16. */
export function styleFor(
  req: Pick<TeacherRequest, 'prompt' | 'seed' | 'choiceIndex' | 'temperature' | 'styleVariation'>,
): number {
  const temperature = req.temperature ?? 1;
  if (temperature <= 0 || req.styleVariation === false) return 0;
  const offset = hashString(`style\u001f${req.seed}\u001f${req.prompt}`) % STYLE_COUNT;
  return (offset + STYLE_STRIDE * req.choiceIndex) % STYLE_COUNT;
}

/** Produce one sampled answer. Pure and deterministic in its inputs. */
export function proceduralTeacherRespond(req: TeacherRequest): TeacherResponse {
  const separate = req.reasoningFormat === 'separate';
  const parsed = parseArithmeticPrompt(req.prompt);
  const words = parsed ? null : parseNumberWordsPrompt(req.prompt);
  if (words !== null) return numberWordsRespond(req, words);
  if (!parsed) {
    return {
      content: separate ? CANNOT_SOLVE_ANSWER : `<think>${CANNOT_SOLVE_REASONING}</think>\n${CANNOT_SOLVE_ANSWER}`,
      ...(separate ? { reasoningContent: CANNOT_SOLVE_REASONING } : {}),
      problem: null,
      givenAnswer: null,
      correctAnswer: null,
      mistakes: 0,
      style: 0,
    };
  }
  const { a, op, b } = parsed;
  const temperature = req.temperature ?? 1;
  const pStep = errorProbabilityPerStep(temperature, req.topP ?? 1, req.baseErrorRate ?? DEFAULT_BASE_ERROR_RATE);
  const rng = rngFrom('teacher', req.seed, req.prompt, req.choiceIndex);
  const mistakeAt = (ctx: ColumnStepContext): ColumnMistake | null => {
    // Fixed number of draws per column keeps the stream aligned regardless of outcomes.
    const u = rng();
    const kind = rng();
    const sign = rng();
    if (u >= pStep) return null;
    if (ctx.carryIn === 1 && kind < 0.5) return { kind: 'forgot-carry' };
    return { kind: 'off-by-one', delta: sign < 0.5 ? 1 : -1 };
  };
  const style = styleFor(req);
  const trace = traceColumnArithmetic(a, op, b, {
    mistakeAt,
    preamble: PREAMBLES[op][style % 4],
    closing: CLOSINGS[Math.floor(style / 4)],
  });
  return {
    content: separate ? trace.summary : trace.text,
    ...(separate ? { reasoningContent: trace.reasoning } : {}),
    problem: { a, op, b },
    givenAnswer: trace.answer,
    correctAnswer: String(computeAnswer(a, op, b)),
    mistakes: trace.mistakes.length,
    style,
  };
}

/**
 * The non-reasoning task (`Write N in words.`): answered directly, without a <think> block. With probability
 * errorProbabilityPerStep(temperature, top_p) (8% at temperature 1) it writes a neighbouring number instead, a
 * mistake an exact-match verifier catches.
 */
function numberWordsRespond(req: TeacherRequest, n: number): TeacherResponse {
  const rng = rngFrom('teacher-words', req.seed, req.prompt, req.choiceIndex);
  const p = errorProbabilityPerStep(req.temperature ?? 1, req.topP ?? 1, req.baseErrorRate ?? DEFAULT_BASE_ERROR_RATE);
  const u = rng();
  const wrong = u < p;
  const given = wrong ? (n === 0 || rng() < 0.5 ? n + 1 : n - 1) : n;
  const text = numberToWords(given);
  return {
    content: text,
    problem: null,
    givenAnswer: text,
    correctAnswer: numberToWords(n),
    mistakes: wrong ? 1 : 0,
    style: 0,
  };
}
