/** Public types of the math verifier: verdicts, the scalar AST, structured values, exact rationals. */
export type MathVerdict = 'correct' | 'incorrect' | 'unparseable_gold' | 'no_answer';

export interface MathVerification {
  verdict: MathVerdict;
  extracted: string | null;
  reason: string;
}

export interface Extraction {
  answer: string | null;
  method: string;
}

export interface Equivalence {
  equal: boolean;
  reason: string;
}

/** AST of a scalar expression. `frac` marks a node written as \frac (for mixed numbers such as 2\frac{1}{2}). */
export type MathNode =
  | { t: 'num'; v: string; r: Rat; dec: boolean }
  | { t: 'var'; name: string }
  | { t: 'const'; name: 'pi' | 'e' | 'i' | 'inf' }
  | { t: 'bin'; op: '+' | '-' | '*' | '/' | '^' | '±' | '∓'; a: MathNode; b: MathNode; frac?: boolean }
  | { t: 'neg'; a: MathNode }
  | { t: 'pmu'; a: MathNode }
  | { t: 'fn'; name: string; args: MathNode[] };

export type MathValue =
  | { kind: 'scalar'; node: MathNode; info?: ScalarInfo }
  /** Order-free collection: a set, a bare comma list of solutions, a union of intervals, a ± expansion. */
  | {
      kind: 'list';
      items: MathValue[];
      pm?: boolean;
      /** items joined by "or": alternatives, never a point */ alternatives?: boolean;
    }
  /** Ordered, bracket-sensitive: points, vectors written with parentheses, intervals. */
  | { kind: 'tuple'; open: string; close: string; items: MathValue[] }
  | { kind: 'matrix'; rows: MathValue[][] }
  /**
   * Equation or inequality chain: parts[0] ops[0] parts[1] ops[1] … `names[k]`: part k is written as the name of a
   * quantity (x, AB, [ABC], a_5, f(2), \theta), not as an expression in it.
   */
  | { kind: 'relation'; parts: MathNode[]; ops: string[]; names?: boolean[] }
  /** A ratio a:b or a:b:c, compared term by term. */
  | { kind: 'ratio'; terms: MathNode[] }
  | { kind: 'text'; text: string }
  | { kind: 'choice'; letter: string }
  | { kind: 'base'; digits: string; base: number };

export interface Rat {
  n: bigint;
  d: bigint;
}

export interface Complex2 {
  re: number;
  im: number;
}

export interface ScalarInfo {
  vars: string[];
  rat: Rat | null;
  dec: boolean;
  /** Value when there are no variables; values at the sample points otherwise. */
  vals?: Complex2[];
}
