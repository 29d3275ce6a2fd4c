/**
 * Math answer verifier for rejection sampling: pure functions, no I/O.
 *
 *   extractAnswer(response)     the model's final answer (last \boxed{…}, "final answer is …", text after </think>)
 *   normalizeAnswer(s, gold?)   LaTeX clean-up (fractions, spacing, units, degrees, %, $, thousands separators…)
 *   parseValue(s)               a structured value: scalar expression, list/set, tuple/interval, matrix, relation,
 *                               text, multiple-choice letter or base-b numeral (null when not comparable)
 *   isEquivalent(pred, gold)    equivalence with the reason
 *   verifyMath(response, gold)  the verdict the reject-sampling stage records
 *
 * Policy (fail closed — a wrong "correct" poisons the training set, a wrong "incorrect" only costs a sample):
 *  - a gold answer that does not parse into something comparable gives 'unparseable_gold', never 'correct';
 *  - exact rationals (integers, fractions, mixed numbers, finite decimals, scientific notation) compare exactly
 *    (BigInt); when exact comparison fails and either side was written as a decimal, a relative tolerance of 1e-6
 *    applies (0.3333333 = 1/3, but 0.33 ≠ 1/3);
 *  - irrational values (radicals, π, e, i, trig…) compare by numeric evaluation with a relative tolerance of 1e-9, or
 *    1e-6 when either side contains a decimal literal — so 3.14 is not π and 1.414 is not √2;
 *  - expressions with variables compare by evaluation at fixed pseudo-random points (same variables required);
 *  - tuples/points/intervals are ordered and bracket-sensitive ((1,2] ≠ (1,2)), sets/solution lists are order-free;
 *  - numbers: thousands groups set apart by any space form (45\,000, 1\ 000, U+202F) are one number; two numbers
 *    side by side are never a product (not parseable); 1,000 is a thousand, (1,000) a pair, 1,5 a list — there is
 *    no decimal comma;
 *  - an equation stating a value is that value: every side a name (x, AB, [ABC], a_5, f(2), P(A), \angle ABC) or
 *    a constant, the constant sides equal (x = 2·18 = 36, 36 = 6^2); an equation in the unknown (2x = 36) or with
 *    constant sides that disagree (AB = 10 = 12) is not; ≠, <, > never state a value;
 *  - \approx: only the exact part before it is compared, and the decimal after it must agree with that part
 *    (rounded or truncated in its last digit) or the answer is not read; an approximation alone (x ≈ 36) and a
 *    rounded gold (2√2 ≈ 2.83 vs gold 2.83) never match;
 *  - a point may be written as assignments of distinct names in their usual order (x = 2, y = 3 or
 *    (x, y) = (2, 3)), never with "or" between them;
 *  - ratios a:b(:c) compare term by term (6:8 ≠ 3:4); a two-term ratio and a number compare as a/b;
 *  - several candidates (a list for one value, "A or B" for one option letter) are never correct.
 *
 * Numeric evaluation uses mathjs (complex numbers, trig, logs, factorial, binomials). No npm library turns LaTeX
 * into something mathjs (or any evaluator) can read with the looseness of model output (\frac43, \sqrt2, implicit
 * multiplication, mixed numbers, \left(…\right], \pm, intervals), so the small LaTeX tokenizer/parser here builds
 * our own AST; exact rational arithmetic on that AST is done with BigInt, and only non-rational nodes are
 * serialised to mathjs syntax and compiled (once per distinct expression, cached).
 *
 * Speed: parsed values are cached per input string (gold answers repeat k times in rejection sampling), plain
 * numbers take a regex + BigInt fast path, and mathjs is only reached for irrational or symbolic answers.
 */
export type {
  Equivalence,
  Extraction,
  MathNode,
  MathValue,
  MathVerdict,
  MathVerification,
  Rat,
  ScalarInfo,
} from './types';
export { normalizeAnswer } from './normalise';
export { clearMathCaches, parseValue } from './parse';
export { isEquivalent } from './compare';
export { extractAnswer } from './extract';
export { verifyMath } from './verdict';
