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
 *  - tuples/points/intervals are ordered and bracket-sensitive ((1,2] ≠ (1,2)), sets/solution lists are order-free.
 *
 * Numeric evaluation uses mathjs (complex numbers, trig, logs, factorial, binomials). No npm library turns LaTeX
 * into something mathjs (or any evaluator) can read with the looseness of model output (\frac43, \sqrt2, implicit
 * multiplication, mixed numbers, \left(…\right], \pm, intervals), so the small LaTeX tokenizer/parser below builds
 * our own AST; exact rational arithmetic on that AST is done with BigInt, and only non-rational nodes are
 * serialised to mathjs syntax and compiled (once per distinct expression, cached).
 *
 * Speed: parsed values are cached per input string (gold answers repeat k times in rejection sampling), plain
 * numbers take a regex + BigInt fast path, and mathjs is only reached for irrational or symbolic answers.
 */
import { all, create, type EvalFunction } from 'mathjs';

export type { Equivalence, Extraction, MathNode, MathValue, MathVerdict, MathVerification, Rat, ScalarInfo } from './types';
export { normalizeAnswer } from './normalise';
export { clearMathCaches, parseValue } from './parse';
export { isEquivalent } from './compare';
export { extractAnswer } from './extract';
export { verifyMath } from './verdict';
