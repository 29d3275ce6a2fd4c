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

// ---------------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------------

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
  | { kind: 'list'; items: MathValue[]; pm?: boolean }
  /** Ordered, bracket-sensitive: points, vectors written with parentheses, intervals. */
  | { kind: 'tuple'; open: string; close: string; items: MathValue[] }
  | { kind: 'matrix'; rows: MathValue[][] }
  /** Equation or inequality chain: parts[0] ops[0] parts[1] ops[1] … */
  | { kind: 'relation'; parts: MathNode[]; ops: string[] }
  | { kind: 'text'; text: string }
  | { kind: 'choice'; letter: string }
  | { kind: 'base'; digits: string; base: number };

export interface Rat {
  n: bigint;
  d: bigint;
}

interface Complex2 {
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

// ---------------------------------------------------------------------------------------------------------------
// mathjs: one private instance (isolated from any global config change), compiled expressions cached.
// ---------------------------------------------------------------------------------------------------------------

/** A bounded cache: cleared wholesale when full (cheap, and hot entries such as repeated golds come back at once). */
class BoundedCache<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(k: K, v: V): this {
    if (this.size >= this.max) this.clear();
    return super.set(k, v);
  }
}

const math = create(all, { number: 'number', predictable: false });
const compiled = new BoundedCache<string, EvalFunction | null>(20000);

function compileCached(expr: string): EvalFunction | null {
  let f = compiled.get(expr);
  if (f === undefined) {
    try {
      f = math.compile(expr);
    } catch {
      f = null;
    }
    compiled.set(expr, f);
  }
  return f;
}


// ---------------------------------------------------------------------------------------------------------------
// Exact rationals (BigInt)
// ---------------------------------------------------------------------------------------------------------------

function bgcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b) [a, b] = [b, a % b];
  return a;
}

function mkRat(n: bigint, d: bigint = 1n): Rat | null {
  if (d === 0n) return null;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  if (d === 1n) return { n, d };
  const g = bgcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}

const ratAdd = (a: Rat, b: Rat) => mkRat(a.n * b.d + b.n * a.d, a.d * b.d);
const ratSub = (a: Rat, b: Rat) => mkRat(a.n * b.d - b.n * a.d, a.d * b.d);
const ratMul = (a: Rat, b: Rat) => mkRat(a.n * b.n, a.d * b.d);
const ratDiv = (a: Rat, b: Rat) => (b.n === 0n ? null : mkRat(a.n * b.d, a.d * b.n));
const ratEq = (a: Rat, b: Rat) => a.n === b.n && a.d === b.d;
const bitLen = (x: bigint) => (x < 0n ? -x : x).toString(16).length * 4;

function ratPow(a: Rat, e: bigint): Rat | null {
  if (e === 0n) return { n: 1n, d: 1n };
  const neg = e < 0n;
  if (neg) e = -e;
  if (e > 4096n || BigInt(Math.max(bitLen(a.n), bitLen(a.d))) * e > 20000n) return null;
  let r = mkRat(a.n ** e, a.d ** e);
  if (r && neg) r = ratDiv({ n: 1n, d: 1n }, r);
  return r;
}

function bsqrt(x: bigint): bigint | null {
  if (x < 0n) return null;
  if (x < 2n) return x;
  let r = BigInt(Math.floor(Math.sqrt(Number(x))));
  // Newton refinement for large values
  for (let k = 0; k < 200; k++) {
    const nr = (r + x / r) >> 1n;
    if (nr >= r && r * r <= x) break;
    r = nr;
  }
  while (r * r > x) r -= 1n;
  while ((r + 1n) * (r + 1n) <= x) r += 1n;
  return r * r === x ? r : null;
}

function ratToNumber(r: Rat): number {
  const x = Number(r.n) / Number(r.d);
  if (Number.isFinite(x) || Number.isNaN(x) === false) {
    if (Number.isFinite(x)) return x;
  }
  const shift = BigInt(Math.max(bitLen(r.n), bitLen(r.d)) - 900);
  if (shift <= 0n) return x;
  return Number(r.n >> shift) / Number(r.d >> shift);
}

/** "12", "-1.25", ".5", "6.72e-5" → exact rational. */
function decimalToRat(lit: string): Rat | null {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(lit);
  if (!m || (m[2] === '' && (m[3] === undefined || m[3] === ''))) return null;
  const frac = m[3] ?? '';
  let n = BigInt((m[2] || '0') + frac);
  let d = 10n ** BigInt(frac.length);
  if (m[4]) {
    const e = parseInt(m[4], 10);
    if (Math.abs(e) > 400) return null;
    if (e >= 0) n *= 10n ** BigInt(e);
    else d *= 10n ** BigInt(-e);
  }
  if (m[1] === '-') n = -n;
  return mkRat(n, d);
}

// ---------------------------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------------------------

const UNIT_WORDS =
  '(?:square |sq\\.? |cubic |cu\\.? )?(?:units?|cm|mm|km|meters?|metres?|centimeters?|centimetres?|millimeters?|kilometers?|' +
  'inch(?:es)?|feet|foot|ft|yards?|yds?|miles?|grams?|kg|kilograms?|pounds?|lbs?|ounces?|oz|liters?|litres?|ml|mL|' +
  'gallons?|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|degrees?|degs?|radians?|rads?|' +
  'dollars?|cents?|percent|mph|km/h|kph|m/s|sq ft|square feet|square inches|square meters|square centimeters)';
const TRAILING_UNIT_RE = new RegExp(`([\\d}).\\]])\\s*${UNIT_WORDS}(?:\\s*\\^\\s*\\{?\\s*[23]\\s*\\}?|²|³)?\\s*$`, 'i');
const TRAILING_TEXT_RE = /^([\s\S]*?[\w})\].])\s*\\text\s*\{\s*([A-Za-z][A-Za-z .\/-]*)\}(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$/;
const DELIM_RES: RegExp[] = [/^\$\$([\s\S]*)\$\$$/, /^\$([\s\S]*)\$$/, /^\\\(([\s\S]*)\\\)$/, /^\\\[([\s\S]*)\\\]$/];

function stripDelims(s: string): string {
  for (let k = 0; k < 4; k++) {
    let changed = false;
    for (const re of DELIM_RES) {
      const m = re.exec(s);
      if (m) {
        s = m[1].trim();
        changed = true;
      }
    }
    if (!changed) break;
  }
  return s;
}

/** Unwrap \text{…} (after units were dealt with); \text{ and } / \text{ or } become list separators. */
function unwrapText(s: string): string {
  for (let k = 0; k < 8 && s.includes('\\text'); k++) {
    const i = s.indexOf('\\text');
    let j = i + 5;
    while (s[j] === ' ') j++;
    if (s[j] !== '{') {
      s = s.slice(0, i) + s.slice(i + 5);
      continue;
    }
    const e = matchBrace(s, j);
    if (e < 0) break;
    s = s.slice(0, i) + s.slice(j + 1, e) + s.slice(e + 1);
  }
  return s;
}

/**
 * LaTeX normalisation of one answer string. With `gold` given and the gold a bare value (no relation), a
 * single-variable equation "x = 3" is reduced to its right-hand side.
 */
export function normalizeAnswer(input: string, gold?: string): string {
  let s = input;
  if (/[^\x20-\x7e]/.test(s)) {
    s = s
      .replace(/[\u2212\u2013\u2014]/g, '-')
      .replace(/\u00d7/g, '\\times ')
      .replace(/[\u00b7\u22c5]/g, '\\cdot ')
      .replace(/\u00f7/g, '\\div ')
      .replace(/\u03c0/g, '\\pi ')
      .replace(/\u221e/g, '\\infty ')
      .replace(/\u221a/g, '\\sqrt')
      .replace(/\u2264/g, '\\le ')
      .replace(/\u2265/g, '\\ge ')
      .replace(/\u2260/g, '\\ne ')
      .replace(/\u00b0/g, '^\\circ')
      .replace(/\u222a/g, '\\cup ')
      .replace(/\u00b1/g, '\\pm ')
      .replace(/\u00b2/g, '^2')
      .replace(/\u00b3/g, '^3')
      .replace(/[\u00a0\u2009\u202f]/g, ' ')
      .replace(/[\u2018\u2019]/g, "'");
  }
  s = stripDelims(s.trim());
  s = s.replace(/\\(?:displaystyle|textstyle|scriptstyle)(?![A-Za-z])/g, '');
  if (s.includes('\\boxed') || s.includes('\\fbox')) {
    const b = findLastBoxed(s);
    if (b) s = b.content;
  }
  s = s
    .replace(/\\(?:left|right)\s*\./g, '')
    .replace(/\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|bigg|Bigg|big|Big)(?![A-Za-z])/g, '')
    .replace(/\\[dtc]frac(?![A-Za-z])/g, '\\frac')
    .replace(/\\[dt]binom(?![A-Za-z])/g, '\\binom');
  // thousands separators written with a LaTeX thin space or a braced comma: 10,\!080  10{,}080
  s = s.replace(/(\d)(?:,\\!|\{,\}|,\\,)\s*(?=\d{3}(?!\d))/g, '$1');
  // (a matrix row break, two backslashes, followed by a space is not the spacing command "backslash space")
  s = s.replace(/(?<!\\)((?:\\\\)*)\\!/g, '$1').replace(/(?<!\\)((?:\\\\)*)\\[,;: ]/g, '$1 ').replace(/\\q?quad(?![A-Za-z])/g, ' ').replace(/~/g, ' ');
  s = s.replace(/\\(?:mbox|textrm|textnormal|mathrm|textup|textit|mathit|textsf|mathsf|textbf|mathbf|boldsymbol|bm|hbox)\s*\{/g, '\\text{');
  // degrees
  s = s.replace(/\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree(?![A-Za-z])/g, '');
  // percent and currency
  s = s.replace(/\\?%/g, '').replace(/\\\$/g, '').replace(/\$/g, '');
  s = s.replace(/\\mathbb\s*\{?\s*R\s*\}?|\\R(?![A-Za-z])/g, '(-\\infty,\\infty)');
  // trailing \text{unit} after a value
  for (let k = 0; k < 3; k++) {
    const m = TRAILING_TEXT_RE.exec(s);
    if (!m || !/[\d\w})\]]/.test(m[1])) break;
    s = m[1];
  }
  if (s.includes('\\text')) s = unwrapText(s);
  s = s.replace(/\s+(?:and|or)\s+/g, ', ');
  s = s.replace(/\bpercent\b/gi, '').replace(/\b(?:dollars?|USD)\b/g, '');
  for (let k = 0; k < 2; k++) {
    const m = TRAILING_UNIT_RE.exec(s);
    if (!m) break;
    s = s.slice(0, m.index + m[1].length);
  }
  s = s.replace(/[\s.,;:?]+$/, '').replace(/^[\s=:]+/, '');
  // plain-text mixed number "2 1/2"
  s = s.replace(/^(-?\d+)\s+(\d+)\/(\d+)$/, (m0, w: string, a: string, b: string) => (BigInt(a) < BigInt(b) ? `${w}\\frac{${a}}{${b}}` : m0));
  s = stripDelims(s.trim());
  if (/^[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/.test(s)) s = s.replace(/,/g, '');
  s = s.replace(/\s+/g, ' ').trim();
  if (gold !== undefined && !/[=<>]|\\[lg]eq?(?![A-Za-z])|\\ne/.test(gold)) {
    const m = /^([A-Za-z](?:_\{?\w+\}?)?|\\[A-Za-z]+)\s*=\s*([^=<>]+)$/.exec(s);
    if (m) s = m[2].trim();
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------------------------

type TokKind = 'num' | 'id' | 'word' | 'fn' | 'cmd' | 'op' | 'begin' | 'end';
interface Tok {
  k: TokKind;
  v: string;
  r?: Rat;
}

class NotMath extends Error {}

const GREEK = new Set([
  'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'varepsilon', 'zeta', 'eta', 'theta', 'vartheta', 'iota', 'kappa',
  'lambda', 'mu', 'nu', 'xi', 'rho', 'varrho', 'sigma', 'varsigma', 'tau', 'upsilon', 'phi', 'varphi', 'chi', 'psi',
  'omega', 'Gamma', 'Delta', 'Theta', 'Lambda', 'Xi', 'Sigma', 'Upsilon', 'Phi', 'Psi', 'Omega',
]);
/** LaTeX function name → mathjs function name. */
const FUNCS: Record<string, string> = {
  sin: 'sin', cos: 'cos', tan: 'tan', cot: 'cot', sec: 'sec', csc: 'csc',
  arcsin: 'asin', arccos: 'acos', arctan: 'atan', arccot: 'acot', arcsec: 'asec', arccsc: 'acsc',
  sinh: 'sinh', cosh: 'cosh', tanh: 'tanh', coth: 'coth', ln: 'log', log: 'log', lg: 'log10', exp: 'exp',
};
const INVERSE: Record<string, string> = { sin: 'asin', cos: 'acos', tan: 'atan', cot: 'acot', sec: 'asec', csc: 'acsc' };
const CMD_OPS: Record<string, string> = {
  cdot: '*', times: '*', ast: '*', div: '/', pm: '±', mp: '∓', cup: 'cup',
  le: '<=', leq: '<=', leqslant: '<=', ge: '>=', geq: '>=', geqslant: '>=', lt: '<', gt: '>', ne: '!=', neq: '!=',
  in: 'in', approx: '~', simeq: '~', lvert: '|', rvert: '|', vert: '|', mid: '|', lbrace: '\\{', rbrace: '\\}',
  langle: '(', rangle: ')', colon: ':',
};
const CMDS = new Set(['frac', 'sqrt', 'binom', 'pi', 'infty', 'emptyset', 'varnothing', 'lfloor', 'rfloor', 'lceil', 'rceil']);
const SKIP_CMDS = new Set([
  'left', 'right', 'big', 'Big', 'bigg', 'Bigg', 'bigl', 'bigr', 'Bigl', 'Bigr', 'displaystyle', 'quad', 'qquad',
  'circ', 'degree', 'limits', 'nolimits', 'textstyle',
]);
const SHORT_WORDS = new Set(['no', 'on', 'of', 'to', 'is', 'it', 'an', 'as', 'at', 'by', 'if', 'up', 'us', 'we', 'be', 'do', 'go', 'so', 'or', 'and']);
const LETTER_WORDS: Record<string, Tok> = {
  pi: { k: 'cmd', v: 'pi' }, inf: { k: 'cmd', v: 'infty' }, infty: { k: 'cmd', v: 'infty' },
  infinity: { k: 'cmd', v: 'infty' }, sqrt: { k: 'cmd', v: 'sqrt' },
};
const SIMPLE_OPS = new Set(['+', '-', '*', '/', '^', '_', '(', ')', '[', ']', '{', '}', '|', ',', '=', "'", '&', ';']);

const NUM_RE = /(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)(?![A-Za-z^\d]))?/y;
const REPEAT_RE = /(\d*)\.(\d*)\\overline\s*\{(\d+)\}/y;
const LETTERS_RE = /[A-Za-z]+/y;

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

function tokenize(s: string): Tok[] | null {
  const out: Tok[] = [];
  const n = s.length;
  let i = 0;
  while (i < n) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (isDigitCode(c) || (ch === '.' && i + 1 < n && isDigitCode(s.charCodeAt(i + 1)))) {
      REPEAT_RE.lastIndex = i;
      const rm = REPEAT_RE.exec(s);
      if (rm) {
        const [, ip, nr, rep] = rm;
        const k = BigInt(nr.length);
        const base = decimalToRat(`${ip || '0'}.${nr}`)!;
        const r = ratAdd(base, mkRat(BigInt(rep), 10n ** k * (10n ** BigInt(rep.length) - 1n))!)!;
        out.push({ k: 'num', v: rm[0], r });
        i = REPEAT_RE.lastIndex;
        continue;
      }
      NUM_RE.lastIndex = i;
      const m = NUM_RE.exec(s)!;
      out.push({ k: 'num', v: m[0] });
      i = NUM_RE.lastIndex;
      continue;
    }
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
      LETTERS_RE.lastIndex = i;
      const run = LETTERS_RE.exec(s)![0];
      i += run.length;
      if (LETTER_WORDS[run]) out.push(LETTER_WORDS[run]);
      else if (FUNCS[run]) out.push({ k: 'fn', v: run });
      else if (run.length >= 3 || SHORT_WORDS.has(run.toLowerCase())) out.push({ k: 'word', v: run });
      else for (const l of run) out.push({ k: 'id', v: l });
      continue;
    }
    if (ch === '\\') {
      const nx = s[i + 1];
      if (nx === undefined) return null;
      if (!/[A-Za-z]/.test(nx)) {
        i += 2;
        if (nx === '{') out.push({ k: 'op', v: '\\{' });
        else if (nx === '}') out.push({ k: 'op', v: '\\}' });
        else if (nx === '\\') out.push({ k: 'op', v: '\\\\' });
        else if (nx === '|') out.push({ k: 'op', v: '|' });
        else if (!' ,;:!%$'.includes(nx)) return null;
        continue;
      }
      LETTERS_RE.lastIndex = i + 1;
      const name = LETTERS_RE.exec(s)![0];
      i += 1 + name.length;
      if (SKIP_CMDS.has(name)) continue;
      if (CMD_OPS[name]) out.push({ k: 'op', v: CMD_OPS[name] });
      else if (CMDS.has(name)) out.push({ k: 'cmd', v: name === 'varnothing' ? 'emptyset' : name });
      else if (FUNCS[name]) out.push({ k: 'fn', v: name });
      else if (GREEK.has(name)) out.push({ k: 'id', v: name });
      else if (name === 'begin' || name === 'end') {
        while (s[i] === ' ') i++;
        if (s[i] !== '{') return null;
        const e = matchBrace(s, i);
        if (e < 0) return null;
        const env = s.slice(i + 1, e).trim();
        i = e + 1;
        if (name === 'begin' && env === 'array') {
          while (s[i] === ' ') i++;
          if (s[i] === '{') {
            const e2 = matchBrace(s, i);
            if (e2 < 0) return null;
            i = e2 + 1;
          }
        }
        out.push({ k: name, v: env.replace(/\*$/, '') });
      } else if (name === 'text' || name === 'operatorname' || name === 'mathbb') {
        while (s[i] === ' ') i++;
        if (s[i] !== '{') return null;
        const e = matchBrace(s, i);
        if (e < 0) return null;
        const content = s.slice(i + 1, e).trim();
        i = e + 1;
        if (!content) continue;
        if (name === 'operatorname' && FUNCS[content]) out.push({ k: 'fn', v: content });
        else if (/^[A-Za-z .'-]+$/.test(content)) out.push({ k: 'word', v: content });
        else {
          const inner = tokenize(content);
          if (!inner) return null;
          out.push(...inner);
        }
      } else return null; // unknown command: not comparable
      continue;
    }
    if (ch === '<' || ch === '>' || ch === '!') {
      if (s[i + 1] === '=') {
        out.push({ k: 'op', v: ch === '!' ? '!=' : ch + '=' });
        i += 2;
        continue;
      }
      out.push({ k: 'op', v: ch });
      i++;
      continue;
    }
    if (SIMPLE_OPS.has(ch)) {
      out.push({ k: 'op', v: ch === ';' ? ',' : ch });
      i++;
      continue;
    }
    return null;
  }
  return out;
}

/** Index of the brace closing the one at `j` (escaped \{ \} and \\ skipped), or -1. */
function matchBrace(s: string, j: number): number {
  let depth = 0;
  for (let k = j; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\') {
      k++;
      continue;
    }
    if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) return k;
    }
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------------------------
// Expression parser (tokens → MathNode)
// ---------------------------------------------------------------------------------------------------------------

const isOp = (t: Tok | undefined, v: string): boolean => !!t && t.k === 'op' && t.v === v;

function numNode(t: Tok): MathNode {
  const r = t.r ?? decimalToRat(t.v);
  if (!r) throw new NotMath(`bad number ${t.v}`);
  return { t: 'num', v: t.v, r, dec: /[.eE]/.test(t.v) };
}

const isIntLit = (n: MathNode): boolean => n.t === 'num' && !n.dec && n.r.d === 1n;

class ExprParser {
  private pos: number;
  private absDepth = 0;

  constructor(
    private readonly toks: Tok[],
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  private peek(): Tok | undefined {
    return this.pos < this.end ? this.toks[this.pos] : undefined;
  }

  private expectOp(v: string): void {
    if (!isOp(this.peek(), v)) throw new NotMath(`expected ${v}`);
    this.pos++;
  }

  parseFull(): MathNode {
    const n = this.parseAdd();
    if (this.pos !== this.end) throw new NotMath(`unexpected ${this.toks[this.pos].v}`);
    return n;
  }

  private parseAdd(): MathNode {
    let left = this.parseMul();
    for (;;) {
      const t = this.peek();
      if (t && t.k === 'op' && (t.v === '+' || t.v === '-' || t.v === '±' || t.v === '∓')) {
        this.pos++;
        left = { t: 'bin', op: t.v, a: left, b: this.parseMul() };
      } else return left;
    }
  }

  private startsAtom(t: Tok | undefined): boolean {
    if (!t) return false;
    switch (t.k) {
      case 'num':
      case 'id':
      case 'fn':
        return true;
      case 'cmd':
        return t.v !== 'rfloor' && t.v !== 'rceil' && t.v !== 'emptyset';
      case 'op':
        return t.v === '(' || t.v === '{' || (t.v === '|' && this.absDepth === 0);
      default:
        return false;
    }
  }

  private parseMul(): MathNode {
    let left = this.parseUnary();
    for (;;) {
      const t = this.peek();
      if (isOp(t, '*')) {
        this.pos++;
        left = { t: 'bin', op: '*', a: left, b: this.parseUnary() };
      } else if (isOp(t, '/')) {
        this.pos++;
        left = { t: 'bin', op: '/', a: left, b: this.parseUnary() };
      } else if (this.startsAtom(t)) {
        const right = this.parsePow();
        // mixed number: 2\frac{1}{2} = 2 + 1/2 (only integer whole part and a proper integer fraction)
        const whole = left.t === 'neg' ? left.a : left;
        if (
          isIntLit(whole) &&
          right.t === 'bin' &&
          right.frac &&
          isIntLit(right.a) &&
          isIntLit(right.b) &&
          (right.a as { r: Rat }).r.n < (right.b as { r: Rat }).r.n
        ) {
          const sum: MathNode = { t: 'bin', op: '+', a: whole, b: right };
          left = left.t === 'neg' ? { t: 'neg', a: sum } : sum;
        } else left = { t: 'bin', op: '*', a: left, b: right };
      } else return left;
    }
  }

  private parseUnary(): MathNode {
    const t = this.peek();
    if (isOp(t, '-')) {
      this.pos++;
      return { t: 'neg', a: this.parseUnary() };
    }
    if (isOp(t, '+')) {
      this.pos++;
      return this.parseUnary();
    }
    if (isOp(t, '±') || isOp(t, '∓')) {
      this.pos++;
      return { t: 'pmu', a: this.parseUnary() };
    }
    return this.parsePow();
  }

  private parsePow(): MathNode {
    const base = this.parsePostfix();
    if (isOp(this.peek(), '^')) {
      this.pos++;
      const exp = this.parseScriptArg();
      let n: MathNode = { t: 'bin', op: '^', a: base, b: exp };
      while (isOp(this.peek(), '!')) {
        this.pos++;
        n = { t: 'fn', name: 'factorial', args: [n] };
      }
      return n;
    }
    return base;
  }

  private parsePostfix(): MathNode {
    let a = this.parseAtom();
    while (isOp(this.peek(), '!')) {
      this.pos++;
      a = { t: 'fn', name: 'factorial', args: [a] };
    }
    return a;
  }

  /** Argument of ^, \frac, \sqrt, \binom: a braced group, one digit of a digit run (\frac43), or one atom. */
  private parseScriptArg(): MathNode {
    const t = this.peek();
    if (!t) throw new NotMath('missing argument');
    if (isOp(t, '{')) {
      this.pos++;
      const e = this.parseAdd();
      this.expectOp('}');
      return e;
    }
    if (isOp(t, '-')) {
      this.pos++;
      return { t: 'neg', a: this.parseScriptArg() };
    }
    if (t.k === 'num' && !t.r && /^\d{2,}$/.test(t.v)) {
      const first = t.v[0];
      this.toks[this.pos] = { k: 'num', v: t.v.slice(1) };
      return numNode({ k: 'num', v: first });
    }
    return this.parseAtom();
  }

  /** Argument of \sin, \log…: a parenthesised group, or an implicit product of atoms that are not functions. */
  private parseFnArg(): MathNode {
    const t = this.peek();
    if (isOp(t, '(')) return this.parsePostfix();
    let left = this.parsePow();
    while (this.startsAtom(this.peek()) && this.peek()!.k !== 'fn') left = { t: 'bin', op: '*', a: left, b: this.parsePow() };
    return left;
  }

  private parseAtom(): MathNode {
    const t = this.peek();
    if (!t) throw new NotMath('unexpected end');
    this.pos++;
    switch (t.k) {
      case 'num':
        return numNode(t);
      case 'id': {
        let name = t.v;
        if (isOp(this.peek(), '_')) {
          this.pos++;
          const s = this.peek();
          if (!s) throw new NotMath('bad subscript');
          if (isOp(s, '{')) {
            let depth = 0;
            let j = this.pos;
            const parts: string[] = [];
            for (; j < this.end; j++) {
              const u = this.toks[j];
              if (isOp(u, '{')) depth++;
              else if (isOp(u, '}')) {
                depth--;
                if (depth === 0) break;
              } else parts.push(u.v);
            }
            if (j >= this.end) throw new NotMath('bad subscript');
            name += '_' + parts.join('');
            this.pos = j + 1;
          } else {
            name += '_' + (s.k === 'num' ? s.v[0] : s.v);
            if (s.k === 'num' && s.v.length > 1 && !s.r) this.toks[this.pos] = { k: 'num', v: s.v.slice(1) };
            else this.pos++;
          }
          return { t: 'var', name };
        }
        if (name === 'e') return { t: 'const', name: 'e' };
        if (name === 'i') return { t: 'const', name: 'i' };
        return { t: 'var', name };
      }
      case 'op': {
        if (t.v === '(' || t.v === '[' || t.v === '{') {
          const e = this.parseAdd();
          this.expectOp(t.v === '(' ? ')' : t.v === '[' ? ']' : '}');
          return e;
        }
        if (t.v === '|') {
          this.absDepth++;
          const e = this.parseAdd();
          this.absDepth--;
          this.expectOp('|');
          return { t: 'fn', name: 'abs', args: [e] };
        }
        throw new NotMath(`unexpected ${t.v}`);
      }
      case 'cmd':
        switch (t.v) {
          case 'frac': {
            const a = this.parseScriptArg();
            const b = this.parseScriptArg();
            return { t: 'bin', op: '/', a, b, frac: true };
          }
          case 'binom': {
            const a = this.parseScriptArg();
            const b = this.parseScriptArg();
            return { t: 'fn', name: 'combinations', args: [a, b] };
          }
          case 'sqrt': {
            if (isOp(this.peek(), '[')) {
              this.pos++;
              const idx = this.parseAdd();
              this.expectOp(']');
              return { t: 'fn', name: 'nthRoot', args: [this.parseScriptArg(), idx] };
            }
            return { t: 'fn', name: 'sqrt', args: [this.parseScriptArg()] };
          }
          case 'pi':
            return { t: 'const', name: 'pi' };
          case 'infty':
            return { t: 'const', name: 'inf' };
          case 'lfloor':
          case 'lceil': {
            const e = this.parseAdd();
            const close = this.peek();
            if (!close || close.k !== 'cmd' || close.v !== (t.v === 'lfloor' ? 'rfloor' : 'rceil')) throw new NotMath('unclosed floor/ceil');
            this.pos++;
            return { t: 'fn', name: t.v === 'lfloor' ? 'floor' : 'ceil', args: [e] };
          }
          default:
            throw new NotMath(`unexpected \\${t.v}`);
        }
      case 'fn': {
        let fname = FUNCS[t.v];
        let power: MathNode | null = null;
        let base: MathNode | null = null;
        for (let k = 0; k < 2; k++) {
          if (isOp(this.peek(), '^')) {
            this.pos++;
            power = this.parseScriptArg();
          } else if (isOp(this.peek(), '_') && (t.v === 'log')) {
            this.pos++;
            base = this.parseScriptArg();
          }
        }
        if (power && power.t === 'neg' && power.a.t === 'num' && power.a.v === '1' && INVERSE[t.v]) {
          fname = INVERSE[t.v];
          power = null;
        }
        const arg = this.parseFnArg();
        let n: MathNode = { t: 'fn', name: fname, args: base ? [arg, base] : [arg] };
        if (power) n = { t: 'bin', op: '^', a: n, b: power };
        return n;
      }
      default:
        throw new NotMath(`unexpected ${t.v}`);
    }
  }
}

function hasPm(n: MathNode): boolean {
  switch (n.t) {
    case 'pmu':
      return true;
    case 'bin':
      return n.op === '±' || n.op === '∓' || hasPm(n.a) || hasPm(n.b);
    case 'neg':
      return hasPm(n.a);
    case 'fn':
      return n.args.some(hasPm);
    default:
      return false;
  }
}

/** All sign choices of an expression with ± (at most 3 of them). */
function expandPm(n: MathNode, budget = { left: 3 }): MathNode[] {
  switch (n.t) {
    case 'pmu': {
      if (budget.left-- <= 0) throw new NotMath('too many ±');
      const as = expandPm(n.a, budget);
      return [...as, ...as.map((a): MathNode => ({ t: 'neg', a }))];
    }
    case 'bin': {
      const as = expandPm(n.a, budget);
      const bs = expandPm(n.b, budget);
      const out: MathNode[] = [];
      if (n.op === '±' || n.op === '∓') {
        if (budget.left-- <= 0) throw new NotMath('too many ±');
        const first = n.op === '±' ? '+' : '-';
        const second = n.op === '±' ? '-' : '+';
        for (const a of as) for (const b of bs) out.push({ t: 'bin', op: first, a, b }, { t: 'bin', op: second, a, b });
      } else for (const a of as) for (const b of bs) out.push({ ...n, a, b });
      return out;
    }
    case 'neg':
      return expandPm(n.a, budget).map((a): MathNode => ({ t: 'neg', a }));
    case 'fn': {
      let combos: MathNode[][] = [[]];
      for (const arg of n.args) {
        const opts = expandPm(arg, budget);
        combos = combos.flatMap((c) => opts.map((o) => [...c, o]));
      }
      return combos.map((args): MathNode => ({ t: 'fn', name: n.name, args }));
    }
    default:
      return [n];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Structure parser (tokens → MathValue)
// ---------------------------------------------------------------------------------------------------------------

const OPENERS = new Set(['(', '[', '{', '\\{']);
const CLOSERS = new Set([')', ']', '}', '\\}']);
const RELATIONS = new Set(['=', '<', '>', '<=', '>=', '!=', 'in', '~']);

function depthDelta(t: Tok): number {
  if (t.k === 'begin') return 1;
  if (t.k === 'end') return -1;
  if (t.k !== 'op') return 0;
  if (OPENERS.has(t.v)) return 1;
  if (CLOSERS.has(t.v)) return -1;
  return 0;
}

/** Index of the closer matching the opener at lo (any bracket kind closes any: intervals mix them). */
function matchTok(toks: Tok[], lo: number, hi: number): number {
  let depth = 0;
  for (let k = lo; k < hi; k++) {
    depth += depthDelta(toks[k]);
    if (depth === 0) return k;
    if (depth < 0) return -1;
  }
  return -1;
}

function splitTop(toks: Tok[], lo: number, hi: number, isSep: (t: Tok) => boolean): Array<[number, number]> {
  const parts: Array<[number, number]> = [];
  let depth = 0;
  let start = lo;
  for (let k = lo; k < hi; k++) {
    const t = toks[k];
    const d = depthDelta(t);
    if (d) depth += d;
    else if (depth === 0 && isSep(t)) {
      parts.push([start, k]);
      start = k + 1;
    }
  }
  parts.push([start, hi]);
  return parts;
}

const isComma = (t: Tok) => t.k === 'op' && (t.v === ',' || t.v === 'cup');

function flattenPm(v: MathValue): MathValue[] {
  return v.kind === 'list' && v.pm ? v.items : [v];
}

function parseStruct(toks: Tok[], lo: number, hi: number): MathValue {
  if (lo >= hi) throw new NotMath('empty');
  // 1. top-level list: "1, -2", "(0,9) \cup (9,36)"
  const parts = splitTop(toks, lo, hi, isComma);
  if (parts.length > 1) return { kind: 'list', items: parts.flatMap(([a, b]) => flattenPm(parseStruct(toks, a, b))) };
  const first = toks[lo];
  const last = toks[hi - 1];
  // 2. matrix
  if (first.k === 'begin' && last.k === 'end' && matchTok(toks, lo, hi) === hi - 1) {
    const rows = splitTop(toks, lo + 1, hi - 1, (t) => isOp(t, '\\\\'))
      .filter(([a, b]) => b > a)
      .map(([a, b]) => splitTop(toks, a, b, (t) => isOp(t, '&')).map(([c, d]) => parseStruct(toks, c, d)));
    if (!rows.length || rows.some((r) => r.length !== rows[0].length)) throw new NotMath('ragged matrix');
    return { kind: 'matrix', rows };
  }
  // 3. set
  if (isOp(first, '\\{') && matchTok(toks, lo, hi) === hi - 1) {
    if (hi - lo === 2) return { kind: 'list', items: [] };
    return { kind: 'list', items: splitTop(toks, lo + 1, hi - 1, isComma).flatMap(([a, b]) => flattenPm(parseStruct(toks, a, b))) };
  }
  if (hi - lo === 1 && first.k === 'cmd' && first.v === 'emptyset') return { kind: 'list', items: [] };
  // 4. tuple / point / interval
  if (first.k === 'op' && (first.v === '(' || first.v === '[') && (isOp(last, ')') || isOp(last, ']')) && matchTok(toks, lo, hi) === hi - 1) {
    const inner = splitTop(toks, lo + 1, hi - 1, isComma);
    if (inner.length >= 2) return { kind: 'tuple', open: first.v, close: last.v, items: inner.map(([a, b]) => parseStruct(toks, a, b)) };
    if (first.v === '(' && last.v === ')') return parseStruct(toks, lo + 1, hi - 1);
  }
  // 5. relation (equation, inequality, membership)
  const rel = splitTop(toks, lo, hi, (t) => t.k === 'op' && RELATIONS.has(t.v));
  if (rel.length > 1) {
    const ops: string[] = [];
    for (let k = 0; k < rel.length - 1; k++) ops.push(toks[rel[k][1]].v);
    if (ops[0] === 'in' && ops.length === 1) {
      if (!isSymbolRange(toks, rel[0][0], rel[0][1])) throw new NotMath('bad membership');
      return parseStruct(toks, rel[1][0], rel[1][1]);
    }
    if (ops.includes('in')) throw new NotMath('mixed membership');
    const canon = ops.map((o) => (o === '~' ? '=' : o));
    const values = rel.map(([a, b]) => parseStruct(toks, a, b));
    if (values.every((v) => v.kind === 'scalar')) {
      return { kind: 'relation', parts: values.map((v) => (v as { node: MathNode }).node), ops: canon };
    }
    // "S = \{1, 2\}", "x = (1, 2)": a name bound to a structured value
    if (values.length === 2 && canon[0] === '=' && isSymbolRange(toks, rel[0][0], rel[0][1])) return values[1];
    throw new NotMath('relation between structures');
  }
  // 6. scalar expression
  const node = new ExprParser(toks, lo, hi).parseFull();
  if (hasPm(node)) return { kind: 'list', pm: true, items: expandPm(node).map((n): MathValue => ({ kind: 'scalar', node: n })) };
  return { kind: 'scalar', node };
}

/** A bare name: one letter or Greek letter, optionally subscripted (x, x_1, a_{n}, \theta). */
function isSymbolRange(toks: Tok[], lo: number, hi: number): boolean {
  if (hi <= lo || toks[lo].k !== 'id') return false;
  if (hi - lo === 1) return true;
  return isOp(toks[lo + 1], '_');
}

// ---------------------------------------------------------------------------------------------------------------
// Parse entry point (cached)
// ---------------------------------------------------------------------------------------------------------------

interface Parsed {
  norm: string;
  value: MathValue | null;
  pct: boolean;
  why: string;
}

const parseCache = new BoundedCache<string, Parsed>(50000);

/** Empties the parse and compile caches (the benchmark measures verification without warm caches). */
export function clearMathCaches(): void {
  parseCache.clear();
  compiled.clear();
}
const PLAIN_TEXT_RE = /^[A-Za-z][A-Za-z0-9 ,.'\-()&/]*$/;
const CHOICE_GOLD_RE = /^(?:\(([A-Ja-j])\)|([A-J])\)?)$/;
const BASE_RE = /^([0-9A-Za-z]+)_\{?\(?(\d{1,2})\)?\}?$/;
const INT_RE = /^[-+]?\d+$/;
const WHOLE_TEXT_RE = /^\s*\$?\s*\\(?:text|textbf|textrm|mathrm|mbox)\s*\{\s*[A-Za-z][A-Za-z '-]*\}\s*\$?\s*\.?\s*$/;
const DEC_RE = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const SIMPLE_FRAC_RE = /^(-?)\\frac\{(\d+)\}\{(\d+)\}$/;

function scalarOfRat(lit: string, r: Rat, dec: boolean): MathValue {
  return { kind: 'scalar', node: { t: 'num', v: lit, r, dec }, info: { vars: [], rat: r, dec } };
}

function parseNormalized(norm: string): { value: MathValue | null; why: string } {
  if (!norm) return { value: null, why: 'empty' };
  // fast paths: plain integers, decimals and simple fractions
  if (INT_RE.test(norm)) {
    const r = mkRat(BigInt(norm))!;
    return { value: scalarOfRat(norm, r, false), why: 'integer' };
  }
  if (DEC_RE.test(norm)) {
    const r = decimalToRat(norm);
    if (r) return { value: scalarOfRat(norm, r, true), why: 'decimal' };
  }
  const fm = SIMPLE_FRAC_RE.exec(norm);
  if (fm) {
    const r = mkRat(BigInt(fm[1] + fm[2]), BigInt(fm[3]));
    if (r) return { value: scalarOfRat(norm, r, false), why: 'fraction' };
  }
  const cm = CHOICE_GOLD_RE.exec(norm);
  if (cm) return { value: { kind: 'choice', letter: (cm[1] ?? cm[2]).toUpperCase() }, why: 'choice' };
  const bm = BASE_RE.exec(norm);
  if (bm) {
    const base = parseInt(bm[2], 10);
    if (base >= 2 && base <= 36 && [...bm[1].toLowerCase()].every((ch) => parseInt(ch, 36) < base)) {
      return { value: { kind: 'base', digits: bm[1].toUpperCase().replace(/^0+(?=.)/, ''), base }, why: 'base numeral' };
    }
  }
  let toks = tokenize(norm);
  if (toks === null) {
    return PLAIN_TEXT_RE.test(norm) ? { value: { kind: 'text', text: norm }, why: 'text' } : { value: null, why: 'unknown LaTeX' };
  }
  const w = toks.findIndex((t) => t.k === 'word');
  if (w >= 0) {
    // "12 eggs": a value followed by a few plain words → the value; otherwise the whole thing is text
    const tail = toks.slice(w);
    if (w > 0 && tail.length <= 3 && tail.every((t) => t.k === 'word' || t.k === 'id') && toks.slice(0, w).every((t) => t.k !== 'word') && /\d/.test(norm)) {
      toks = toks.slice(0, w);
    } else if (PLAIN_TEXT_RE.test(norm) || toks.every((t) => t.k === 'word')) {
      return { value: { kind: 'text', text: toks.every((t) => t.k === 'word') ? toks.map((t) => t.v).join(' ') : norm }, why: 'text' };
    } else return { value: null, why: 'words mixed with math' };
  }
  if (!toks.length) return { value: null, why: 'empty' };
  try {
    return { value: parseStruct(toks, 0, toks.length), why: 'parsed' };
  } catch (e) {
    if (e instanceof NotMath) return { value: null, why: e.message };
    throw e;
  }
}

function parseCached(raw: string): Parsed {
  let p = parseCache.get(raw);
  if (p) return p;
  const pct = /%|\\%|\bpercent\b/i.test(raw);
  const norm = normalizeAnswer(raw);
  // an answer wholly inside \text{…} made of words is text ("\text{No}" is not the product N·o)
  const tm = WHOLE_TEXT_RE.exec(raw);
  const { value, why } = tm && !CHOICE_GOLD_RE.test(norm) ? { value: { kind: 'text', text: norm } as MathValue, why: 'text' } : parseNormalized(norm);
  p = { norm, value, pct, why };
  parseCache.set(raw, p);
  return p;
}

/** Parse an answer (raw LaTeX) into a comparable value; null when it is not comparable (fail closed). */
export function parseValue(s: string): MathValue | null {
  return parseCached(s).value;
}

// ---------------------------------------------------------------------------------------------------------------
// Scalar evaluation
// ---------------------------------------------------------------------------------------------------------------

function exactRat(n: MathNode): Rat | null {
  switch (n.t) {
    case 'num':
      return n.r;
    case 'neg': {
      const a = exactRat(n.a);
      return a && { n: -a.n, d: a.d };
    }
    case 'bin': {
      const a = exactRat(n.a);
      if (!a) return null;
      const b = exactRat(n.b);
      if (!b) return null;
      switch (n.op) {
        case '+':
          return ratAdd(a, b);
        case '-':
          return ratSub(a, b);
        case '*':
          return ratMul(a, b);
        case '/':
          return ratDiv(a, b);
        case '^':
          if (b.d !== 1n || (a.n === 0n && b.n < 0n)) return null;
          return ratPow(a, b.n);
        default:
          return null;
      }
    }
    case 'fn': {
      if (n.args.length === 1) {
        const a = exactRat(n.args[0]);
        if (!a) return null;
        switch (n.name) {
          case 'abs':
            return { n: a.n < 0n ? -a.n : a.n, d: a.d };
          case 'sqrt': {
            const sn = bsqrt(a.n);
            const sd = bsqrt(a.d);
            return sn !== null && sd !== null ? mkRat(sn, sd) : null;
          }
          case 'floor':
          case 'ceil': {
            let q = a.n / a.d;
            if (a.n % a.d !== 0n) {
              if (n.name === 'floor' && a.n < 0n) q -= 1n;
              if (n.name === 'ceil' && a.n > 0n) q += 1n;
            }
            return { n: q, d: 1n };
          }
          case 'factorial': {
            if (a.d !== 1n || a.n < 0n || a.n > 300n) return null;
            let f = 1n;
            for (let k = 2n; k <= a.n; k++) f *= k;
            return { n: f, d: 1n };
          }
          default:
            return null;
        }
      }
      if (n.name === 'combinations') {
        const a = exactRat(n.args[0]);
        const b = exactRat(n.args[1]);
        if (!a || !b || a.d !== 1n || b.d !== 1n || a.n < 0n || b.n < 0n || a.n > 2000n) return null;
        if (b.n > a.n) return { n: 0n, d: 1n };
        let r = 1n;
        for (let k = 0n; k < b.n; k++) r = (r * (a.n - k)) / (k + 1n);
        return { n: r, d: 1n };
      }
      return null;
    }
    default:
      return null;
  }
}

function collectVars(n: MathNode, out: Set<string>): void {
  switch (n.t) {
    case 'var':
      out.add(n.name);
      return;
    case 'bin':
      collectVars(n.a, out);
      collectVars(n.b, out);
      return;
    case 'neg':
    case 'pmu':
      collectVars(n.a, out);
      return;
    case 'fn':
      for (const a of n.args) collectVars(a, out);
      return;
    default:
      return;
  }
}

function hasDecimal(n: MathNode): boolean {
  switch (n.t) {
    case 'num':
      return n.dec;
    case 'bin':
      return hasDecimal(n.a) || hasDecimal(n.b);
    case 'neg':
    case 'pmu':
      return hasDecimal(n.a);
    case 'fn':
      return n.args.some(hasDecimal);
    default:
      return false;
  }
}

const varKey = (name: string) => 'v_' + name.replace(/[^A-Za-z0-9]/g, '_');

/** MathNode → mathjs expression syntax (fully parenthesised; variables prefixed so they never hit mathjs names). */
function toMathjs(n: MathNode): string {
  switch (n.t) {
    case 'num':
      return n.v.startsWith('.') ? '0' + n.v : n.v.replace(/\.$/, '');
    case 'var':
      return varKey(n.name);
    case 'const':
      return n.name === 'inf' ? 'Infinity' : n.name;
    case 'bin':
      return `(${toMathjs(n.a)})${n.op}(${toMathjs(n.b)})`;
    case 'neg':
      return `(-(${toMathjs(n.a)}))`;
    case 'pmu':
      throw new NotMath('unexpanded ±');
    case 'fn':
      return `${n.name}(${n.args.map(toMathjs).join(',')})`;
  }
}

/** Sample points: fixed per variable name (so both sides agree without coordinating), 4 generic reals + 2 integers. */
const N_POINTS = 6;
function pointValue(name: string, p: number): number {
  let h = 2166136261;
  for (let k = 0; k < name.length; k++) h = Math.imul(h ^ name.charCodeAt(k), 16777619);
  const u = ((h >>> 0) % 10007) / 10007;
  if (p >= 4) return 2 + ((Math.floor(u * 5) + p * 3) % 7); // integers 2..8
  const x = (u * 0.61803398875 + p * 0.41421356237 + 0.1234) % 1;
  return 0.35 + x * 2.4;
}

function toComplex(x: unknown): Complex2 {
  if (typeof x === 'number') return { re: x, im: 0 };
  if (x && typeof x === 'object' && 're' in x && 'im' in x) {
    const c = x as { re: unknown; im: unknown };
    if (typeof c.re === 'number' && typeof c.im === 'number') return { re: c.re, im: c.im };
  }
  if (typeof x === 'boolean') return { re: x ? 1 : 0, im: 0 };
  return { re: NaN, im: NaN };
}

const NAN_C: Complex2 = { re: NaN, im: NaN };

function scalarInfo(v: { node: MathNode; info?: ScalarInfo }): ScalarInfo {
  if (v.info) return v.info;
  const vars = new Set<string>();
  collectVars(v.node, vars);
  const info: ScalarInfo = { vars: [...vars].sort(), rat: vars.size ? null : exactRat(v.node), dec: hasDecimal(v.node) };
  v.info = info;
  return info;
}

/**
 * Fast path: evaluate the AST in plain doubles. NaN means "not real or not supported here" and sends the caller to
 * mathjs (complex results such as sqrt(-4), i, log of negatives, gamma for non-integer factorials…). This keeps
 * radicals and polynomials off the mathjs compile path (~50 µs per distinct expression) in the common case.
 */
function evalReal(n: MathNode, scope: Record<string, number>): number {
  switch (n.t) {
    case 'num':
      return ratToNumber(n.r);
    case 'var':
      return scope[n.name] ?? NaN;
    case 'const':
      return n.name === 'pi' ? Math.PI : n.name === 'e' ? Math.E : n.name === 'inf' ? Infinity : NaN;
    case 'neg':
      return -evalReal(n.a, scope);
    case 'pmu':
      return NaN;
    case 'bin': {
      const a = evalReal(n.a, scope);
      const b = evalReal(n.b, scope);
      switch (n.op) {
        case '+':
          return a + b;
        case '-':
          return a - b;
        case '*':
          return a * b;
        case '/':
          return a / b;
        case '^':
          return a < 0 && !Number.isInteger(b) ? NaN : Math.pow(a, b);
        default:
          return NaN;
      }
    }
    case 'fn': {
      const x = evalReal(n.args[0], scope);
      switch (n.name) {
        case 'sin':
          return Math.sin(x);
        case 'cos':
          return Math.cos(x);
        case 'tan':
          return Math.tan(x);
        case 'cot':
          return 1 / Math.tan(x);
        case 'sec':
          return 1 / Math.cos(x);
        case 'csc':
          return 1 / Math.sin(x);
        case 'asin':
          return Math.asin(x);
        case 'acos':
          return Math.acos(x);
        case 'atan':
          return Math.atan(x);
        case 'sinh':
          return Math.sinh(x);
        case 'cosh':
          return Math.cosh(x);
        case 'tanh':
          return Math.tanh(x);
        case 'exp':
          return Math.exp(x);
        case 'sqrt':
          return x < 0 ? NaN : Math.sqrt(x);
        case 'abs':
          return Math.abs(x);
        case 'floor':
          return Math.floor(x);
        case 'ceil':
          return Math.ceil(x);
        case 'log10':
          return x <= 0 ? NaN : Math.log10(x);
        case 'log': {
          if (x <= 0) return NaN;
          if (n.args.length === 1) return Math.log(x);
          const b = evalReal(n.args[1], scope);
          return b <= 0 ? NaN : Math.log(x) / Math.log(b);
        }
        case 'nthRoot': {
          const k = evalReal(n.args[1], scope);
          if (!Number.isInteger(k) || k <= 0) return NaN;
          if (x < 0) return k % 2 === 1 ? -Math.pow(-x, 1 / k) : NaN;
          return Math.pow(x, 1 / k);
        }
        case 'factorial': {
          if (!Number.isInteger(x) || x < 0 || x > 170) return NaN;
          let f = 1;
          for (let k = 2; k <= x; k++) f *= k;
          return f;
        }
        default:
          return NaN; // combinations, inverse sec/csc/cot, coth…: mathjs
      }
    }
  }
}

/** Value of `node` at `scope`: plain doubles first, mathjs (complex-capable) when that gives NaN. */
function evalAt(node: MathNode, scope: Record<string, number>, mathjsScope: () => Record<string, number>, fn: () => EvalFunction | null): Complex2 {
  const x = evalReal(node, scope);
  if (!Number.isNaN(x)) return { re: x, im: 0 };
  const f = fn();
  if (!f) return NAN_C;
  try {
    return toComplex(f.evaluate(mathjsScope()));
  } catch {
    return NAN_C;
  }
}

function lazyCompile(node: MathNode): () => EvalFunction | null {
  let f: EvalFunction | null | undefined;
  return () => {
    if (f === undefined) {
      try {
        f = compileCached(toMathjs(node));
      } catch {
        f = null;
      }
    }
    return f;
  };
}

function scopes(vars: string[], p: number): [Record<string, number>, () => Record<string, number>] {
  const scope: Record<string, number> = {};
  for (const name of vars) scope[name] = pointValue(name, p);
  return [
    scope,
    () => {
      const ms: Record<string, number> = {};
      for (const name of vars) ms[varKey(name)] = scope[name];
      return ms;
    },
  ];
}

function scalarVals(v: { node: MathNode; info?: ScalarInfo }): Complex2[] {
  const info = scalarInfo(v);
  if (info.vals) return info.vals;
  const fn = lazyCompile(v.node);
  const vals: Complex2[] = [];
  const npts = info.vars.length ? N_POINTS : 1;
  for (let p = 0; p < npts; p++) {
    const [scope, ms] = scopes(info.vars, p);
    vals.push(evalAt(v.node, scope, ms, fn));
  }
  info.vals = vals;
  return vals;
}

const isNanC = (c: Complex2) => Number.isNaN(c.re) || Number.isNaN(c.im);

function close(a: Complex2, b: Complex2, rel: number, abs: number): boolean {
  if (!Number.isFinite(a.re) || !Number.isFinite(a.im) || !Number.isFinite(b.re) || !Number.isFinite(b.im)) {
    return a.re === b.re && a.im === b.im;
  }
  const d = Math.hypot(a.re - b.re, a.im - b.im);
  const ma = Math.hypot(a.re, a.im);
  const mb = Math.hypot(b.re, b.im);
  if (d <= rel * Math.max(ma, mb)) return true;
  // absolute slack only when one side is (numerically) zero
  return d <= abs && Math.min(ma, mb) <= abs;
}

const REL_EXACT = 1e-9;
const REL_DECIMAL = 1e-6;
/** Absolute slack only for floating-point cancellation around zero (sin π vs 0); exact rationals never use it. */
const ABS_EPS = 1e-13;

interface Ctx {
  reason: string;
}

function scalarEq(p: { node: MathNode; info?: ScalarInfo }, g: { node: MathNode; info?: ScalarInfo }, ctx: Ctx): boolean {
  const ip = scalarInfo(p);
  const ig = scalarInfo(g);
  const dec = ip.dec || ig.dec;
  if (ip.rat && ig.rat) {
    if (ratEq(ip.rat, ig.rat)) {
      ctx.reason = 'exact rational match';
      return true;
    }
    if (!dec) {
      ctx.reason = `exact rationals differ (${ip.rat.n}/${ip.rat.d} vs ${ig.rat.n}/${ig.rat.d})`;
      return false;
    }
    // purely relative: 1.6e-18 is not 1.6e-19, however small both are
    const ok = close({ re: ratToNumber(ip.rat), im: 0 }, { re: ratToNumber(ig.rat), im: 0 }, REL_DECIMAL, 0);
    ctx.reason = ok ? 'decimal within relative 1e-6' : 'decimal differs beyond relative 1e-6';
    return ok;
  }
  const rel = dec ? REL_DECIMAL : REL_EXACT;
  const vp = scalarVals(p);
  const vg = scalarVals(g);
  if (!ip.vars.length && !ig.vars.length) {
    if (isNanC(vp[0]) || isNanC(vg[0])) {
      ctx.reason = 'could not evaluate';
      return false;
    }
    const ok = close(vp[0], vg[0], rel, ABS_EPS);
    ctx.reason = ok ? `numeric match (rel ${rel})` : `numeric mismatch (${fmtC(vp[0])} vs ${fmtC(vg[0])})`;
    return ok;
  }
  // Sample values depend only on a variable's name, so sides with different variables still compare fairly:
  // sin^2 x + cos^2 x equals 1 everywhere, 2n+2 and 2k+2 differ as soon as n and k take different values.
  let valid = 0;
  for (let k = 0; k < N_POINTS; k++) {
    const a = vp.length > 1 ? vp[k] : vp[0];
    const b = vg.length > 1 ? vg[k] : vg[0];
    if (isNanC(a) || isNanC(b)) continue;
    if (!close(a, b, rel, 1e-11)) {
      ctx.reason =
        ip.vars.join() === ig.vars.join()
          ? 'expressions differ at a sample point'
          : `expressions differ (variables ${ip.vars.join(',') || 'none'} vs ${ig.vars.join(',') || 'none'})`;
      return false;
    }
    valid++;
  }
  ctx.reason = valid >= 3 ? `expressions agree at ${valid} sample points` : 'could not evaluate expressions';
  return valid >= 3;
}

function fmtC(c: Complex2): string {
  const r = Number(c.re.toPrecision(10));
  return c.im ? `${r}${c.im < 0 ? '-' : '+'}${Math.abs(Number(c.im.toPrecision(10)))}i` : String(r);
}

// ---------------------------------------------------------------------------------------------------------------
// Structural comparison
// ---------------------------------------------------------------------------------------------------------------

/** "x = 3" (a bare name on one side of a single equation) → the value on the other side. */
function unwrapVarEq(v: MathValue): MathValue | null {
  if (v.kind !== 'relation' || v.ops.length !== 1 || v.ops[0] !== '=') return null;
  const [l, r] = v.parts;
  if (l.t === 'var') return { kind: 'scalar', node: r };
  if (r.t === 'var') return { kind: 'scalar', node: l };
  return null;
}

const NEG_INF: MathNode = { t: 'neg', a: { t: 'const', name: 'inf' } };
const POS_INF: MathNode = { t: 'const', name: 'inf' };

/** Single-variable inequality → interval: x > 3 → (3, ∞); -2 ≤ x ≤ 7 → [-2, 7]. */
function toInterval(v: MathValue): MathValue | null {
  if (v.kind !== 'relation') return null;
  const constant = (n: MathNode) => {
    const s = new Set<string>();
    collectVars(n, s);
    return s.size === 0;
  };
  const sc = (n: MathNode): MathValue => ({ kind: 'scalar', node: n });
  if (v.parts.length === 2) {
    const [l, r] = v.parts;
    let op = v.ops[0];
    let c: MathNode;
    if (l.t === 'var' && constant(r)) c = r;
    else if (r.t === 'var' && constant(l)) {
      c = l;
      op = ({ '<': '>', '>': '<', '<=': '>=', '>=': '<=' } as Record<string, string>)[op] ?? op;
    } else return null;
    switch (op) {
      case '<':
        return { kind: 'tuple', open: '(', close: ')', items: [sc(NEG_INF), sc(c)] };
      case '<=':
        return { kind: 'tuple', open: '(', close: ']', items: [sc(NEG_INF), sc(c)] };
      case '>':
        return { kind: 'tuple', open: '(', close: ')', items: [sc(c), sc(POS_INF)] };
      case '>=':
        return { kind: 'tuple', open: '[', close: ')', items: [sc(c), sc(POS_INF)] };
      default:
        return null;
    }
  }
  if (v.parts.length === 3 && v.parts[1].t === 'var' && constant(v.parts[0]) && constant(v.parts[2])) {
    const [o1, o2] = v.ops;
    const up = (o: string) => o === '<' || o === '<=';
    const down = (o: string) => o === '>' || o === '>=';
    if (up(o1) && up(o2)) return { kind: 'tuple', open: o1 === '<' ? '(' : '[', close: o2 === '<' ? ')' : ']', items: [sc(v.parts[0]), sc(v.parts[2])] };
    if (down(o1) && down(o2)) return { kind: 'tuple', open: o2 === '>' ? '(' : '[', close: o1 === '>' ? ')' : ']', items: [sc(v.parts[2]), sc(v.parts[0])] };
  }
  return null;
}

/** Canonical form of a two-sided relation: f op 0 with op in {=, !=, >, >=}. */
function relForm(v: { parts: MathNode[]; ops: string[] }): { f: MathNode; op: string } | null {
  if (v.parts.length !== 2) return null;
  const [l, r] = v.parts;
  const op = v.ops[0];
  const diff = (a: MathNode, b: MathNode): MathNode => ({ t: 'bin', op: '-', a, b });
  switch (op) {
    case '=':
    case '!=':
    case '>':
    case '>=':
      return { f: diff(l, r), op };
    case '<':
      return { f: diff(r, l), op: '>' };
    case '<=':
      return { f: diff(r, l), op: '>=' };
    default:
      return null;
  }
}

function relationEq(p: Extract<MathValue, { kind: 'relation' }>, g: Extract<MathValue, { kind: 'relation' }>, ctx: Ctx): boolean {
  if (p.parts.length !== g.parts.length) {
    ctx.reason = 'relations of different shape';
    return false;
  }
  if (p.parts.length > 2) {
    const ok = p.ops.join() === g.ops.join() && p.parts.every((n, k) => scalarEq({ node: n }, { node: g.parts[k] }, ctx));
    ctx.reason = ok ? 'relation chains match' : 'relation chains differ';
    return ok;
  }
  const fp = relForm(p);
  const fg = relForm(g);
  if (!fp || !fg || fp.op !== fg.op) {
    ctx.reason = 'different relation operators';
    return false;
  }
  // same relation up to a non-zero constant factor (positive for inequalities)
  const sp = { node: fp.f };
  const sg = { node: fg.f };
  const ip = scalarInfo(sp);
  const ig = scalarInfo(sg);
  const names = new Set([...ip.vars, ...ig.vars]);
  const vars = [...names].sort();
  const fnp = lazyCompile(fp.f);
  const fng = lazyCompile(fg.f);
  let ratio: Complex2 | null = null;
  let valid = 0;
  const rel = ip.dec || ig.dec ? REL_DECIMAL : REL_EXACT;
  for (let k = 0; k < (vars.length ? N_POINTS : 1); k++) {
    const [scope, ms] = scopes(vars, k);
    const a = evalAt(fp.f, scope, ms, fnp);
    const b = evalAt(fg.f, scope, ms, fng);
    if (isNanC(a) || isNanC(b) || !Number.isFinite(a.re) || !Number.isFinite(b.re)) continue;
    const za = Math.hypot(a.re, a.im) <= 1e-11;
    const zb = Math.hypot(b.re, b.im) <= 1e-11;
    if (za || zb) {
      if (za !== zb) {
        ctx.reason = 'relations differ';
        return false;
      }
      valid++;
      continue;
    }
    const den = b.re * b.re + b.im * b.im;
    const q: Complex2 = { re: (a.re * b.re + a.im * b.im) / den, im: (a.im * b.re - a.re * b.im) / den };
    if (ratio === null) ratio = q;
    else if (!close(ratio, q, rel, 1e-12)) {
      ctx.reason = 'relations differ';
      return false;
    }
    valid++;
  }
  if (!valid || (vars.length && valid < 3)) {
    ctx.reason = 'could not evaluate relation';
    return false;
  }
  if (ratio && fg.op !== '=' && fg.op !== '!=' && !(ratio.re > 0 && Math.abs(ratio.im) < 1e-12)) {
    ctx.reason = 'inequality direction differs';
    return false;
  }
  ctx.reason = 'equivalent relation';
  return true;
}

function isVectorMatrix(m: Extract<MathValue, { kind: 'matrix' }>): MathValue[] | null {
  if (m.rows.every((r) => r.length === 1)) return m.rows.map((r) => r[0]);
  if (m.rows.length === 1) return m.rows[0];
  return null;
}

function valuesEq(p: MathValue, g: MathValue, ctx: Ctx): boolean {
  if (g.kind === 'list' && g.items.length === 1 && p.kind !== 'list') return valuesEq(p, g.items[0], ctx);
  if (p.kind === 'list' && p.items.length === 1 && g.kind !== 'list') return valuesEq(p.items[0], g, ctx);
  if (p.kind === 'relation' && g.kind !== 'relation') {
    const u = unwrapVarEq(p) ?? toInterval(p);
    if (u) return valuesEq(u, g, ctx);
  }
  if (g.kind === 'relation' && p.kind !== 'relation') {
    const u = unwrapVarEq(g) ?? toInterval(g);
    if (u) return valuesEq(p, u, ctx);
  }
  switch (g.kind) {
    case 'scalar':
      if (p.kind !== 'scalar') {
        ctx.reason = `expected a single value, got a ${p.kind}`;
        return false;
      }
      return scalarEq(p, g, ctx);
    case 'list': {
      if (p.kind !== 'list') {
        ctx.reason = `expected a set/list of ${g.items.length}, got a ${p.kind}`;
        return false;
      }
      if (p.items.length !== g.items.length) {
        ctx.reason = `set sizes differ (${p.items.length} vs ${g.items.length})`;
        return false;
      }
      const used = new Array<boolean>(p.items.length).fill(false);
      const sub: Ctx = { reason: '' };
      for (const gi of g.items) {
        let found = false;
        for (let k = 0; k < p.items.length && !found; k++) {
          if (!used[k] && valuesEq(p.items[k], gi, sub)) found = used[k] = true;
        }
        if (!found) {
          ctx.reason = 'set elements differ';
          return false;
        }
      }
      ctx.reason = 'sets match (order-free)';
      return true;
    }
    case 'tuple': {
      let items: MathValue[] | null = null;
      if (p.kind === 'tuple') {
        if (p.open !== g.open || p.close !== g.close) {
          ctx.reason = `brackets differ (${p.open}…${p.close} vs ${g.open}…${g.close})`;
          return false;
        }
        items = p.items;
      } else if (p.kind === 'matrix' && g.open === '(' && g.close === ')') items = isVectorMatrix(p);
      if (!items) {
        ctx.reason = `expected a tuple/interval, got a ${p.kind}`;
        return false;
      }
      if (items.length !== g.items.length) {
        ctx.reason = 'tuple lengths differ';
        return false;
      }
      for (let k = 0; k < items.length; k++) {
        if (!valuesEq(items[k], g.items[k], ctx)) {
          ctx.reason = `component ${k + 1} differs: ${ctx.reason}`;
          return false;
        }
      }
      ctx.reason = 'tuples match (ordered)';
      return true;
    }
    case 'matrix': {
      if (p.kind === 'tuple' && p.open === '(' && p.close === ')') {
        const vec = isVectorMatrix(g);
        if (vec && vec.length === p.items.length) {
          const ok = vec.every((gi, k) => valuesEq(p.items[k], gi, ctx));
          ctx.reason = ok ? 'vector matches' : 'vector components differ';
          return ok;
        }
      }
      if (p.kind !== 'matrix' || p.rows.length !== g.rows.length || p.rows[0].length !== g.rows[0].length) {
        ctx.reason = 'matrix shapes differ';
        return false;
      }
      for (let r = 0; r < g.rows.length; r++) {
        for (let c = 0; c < g.rows[r].length; c++) {
          if (!valuesEq(p.rows[r][c], g.rows[r][c], ctx)) {
            ctx.reason = `matrix entry (${r + 1},${c + 1}) differs`;
            return false;
          }
        }
      }
      ctx.reason = 'matrices match';
      return true;
    }
    case 'relation':
      if (p.kind !== 'relation') {
        ctx.reason = `expected an equation/inequality, got a ${p.kind}`;
        return false;
      }
      return relationEq(p, g, ctx);
    default:
      ctx.reason = `cannot compare ${p.kind} with ${g.kind}`;
      return false;
  }
}

const textKey = (s: string) =>
  s
    .replace(/\\text\s*\{([^{}]*)\}/g, '$1')
    .replace(/[\s{}\\"'`*]/g, '')
    .replace(/\.+$/, '')
    .toLowerCase();

const CHOICE_PRED_RES: RegExp[] = [
  /^\(([A-Ja-j])\)(?:\s|$|[.:,])/,
  /^([A-J])(?:\)|\.|:|,)?(?:\s|$)/,
  /^(?:option|choice|answer)\s*:?\s*\(?([A-Ja-j])\)?(?:\s|$|[.:,])/i,
];

function choiceLetter(norm: string): string | null {
  const s = norm.trim();
  for (const re of CHOICE_PRED_RES) {
    const m = re.exec(s);
    if (m) return m[1].toUpperCase();
  }
  return null;
}

function scaleScalar(v: MathValue, by: string): MathValue | null {
  if (v.kind !== 'scalar') return null;
  const d: MathNode = { t: 'num', v: by, r: mkRat(BigInt(by))!, dec: false };
  return { kind: 'scalar', node: { t: 'bin', op: '/', a: v.node, b: d } };
}

function compareParsed(pred: Parsed, gold: Parsed): Equivalence {
  const g = gold.value;
  if (!g) return { equal: false, reason: `unparseable gold (${gold.why})` };
  if (!pred.norm) return { equal: false, reason: 'empty prediction' };
  if (g.kind === 'choice') {
    const l = pred.value?.kind === 'choice' ? pred.value.letter : choiceLetter(pred.norm);
    return l === g.letter ? { equal: true, reason: `choice ${g.letter}` } : { equal: false, reason: `choice ${l ?? '?'} vs ${g.letter}` };
  }
  if (g.kind === 'text') {
    const ok = textKey(pred.norm) === textKey(g.text);
    return { equal: ok, reason: ok ? 'text match' : 'text differs' };
  }
  if (g.kind === 'base') {
    const p = pred.value;
    if (p?.kind === 'base') {
      const ok = p.base === g.base && p.digits === g.digits;
      return { equal: ok, reason: ok ? `base-${g.base} numeral match` : 'base numeral differs' };
    }
    const ok = /^[0-9A-Za-z]+$/.test(pred.norm) && pred.norm.toUpperCase().replace(/^0+(?=.)/, '') === g.digits;
    return { equal: ok, reason: ok ? `base-${g.base} digits match (subscript omitted)` : 'base numeral differs' };
  }
  if (pred.norm === gold.norm) return { equal: true, reason: 'identical after normalisation' };
  const p = pred.value;
  if (!p) return { equal: false, reason: `unparseable prediction (${pred.why})` };
  if (p.kind === 'text' || p.kind === 'choice' || p.kind === 'base') {
    return { equal: false, reason: `prediction is ${p.kind}, gold is ${g.kind}` };
  }
  const ctx: Ctx = { reason: '' };
  if (valuesEq(p, g, ctx)) return { equal: true, reason: ctx.reason };
  // percent: "25\%" and 0.25 are the same number; 25 vs 25\% is already equal after stripping the sign
  if (pred.pct !== gold.pct) {
    const alt = pred.pct ? scaleScalar(p, '100') : null;
    const galt = gold.pct ? scaleScalar(g, '100') : null;
    const c2: Ctx = { reason: '' };
    if ((alt && valuesEq(alt, g, c2)) || (galt && valuesEq(p, galt, c2))) return { equal: true, reason: `${c2.reason} (percent as fraction)` };
  }
  return { equal: false, reason: ctx.reason || 'not equivalent' };
}

/** Gold answers sometimes arrive as a whole solution: take its "#### x" or last \boxed{…}. */
function goldAnswer(gold: string): string {
  const h = /####\s*([^\n]+)\s*$/.exec(gold);
  if (h) return h[1].trim();
  if (gold.includes('\\boxed') || gold.includes('\\fbox')) {
    const b = findLastBoxed(gold);
    if (b) return b.content;
  }
  return gold;
}

/** Is `pred` the same answer as `gold`? Fails closed: an unparseable gold is never equal to anything. */
export function isEquivalent(pred: string, gold: string): Equivalence {
  return compareParsed(parseCached(pred), parseCached(goldAnswer(gold)));
}

// ---------------------------------------------------------------------------------------------------------------
// Answer extraction
// ---------------------------------------------------------------------------------------------------------------

function findLastBoxed(text: string): { content: string; method: string } | null {
  let from = text.length;
  while (from > 0) {
    const b = text.lastIndexOf('\\boxed', from - 1);
    const f = text.lastIndexOf('\\fbox', from - 1);
    const i = Math.max(b, f);
    if (i < 0) return null;
    const isBoxed = i === b;
    const method = isBoxed ? 'boxed' : 'fbox';
    let j = i + (isBoxed ? 6 : 5);
    while (text[j] === ' ') j++;
    if (text[j] === '{') {
      const e = matchBrace(text, j);
      if (e > 0) {
        const c = text.slice(j + 1, e).trim();
        if (c) return { content: c, method };
      }
    } else if (isBoxed && j > i + 6) {
      // "\boxed 5"
      const m = /^[^\s$]+/.exec(text.slice(j));
      if (m) return { content: m[0].replace(/[.,]$/, ''), method };
    }
    from = i;
  }
  return null;
}

const PHRASE_RES: Array<[RegExp, string]> = [
  [/final\s+answer\s*(?:is|:|=)?\s*:?/gi, 'final_answer_phrase'],
  [/\banswer\s+is\s*:?/gi, 'answer_is_phrase'],
  [/\banswer\s*:/gi, 'answer_colon'],
];

function cleanPhraseAnswer(x: string): string {
  x = x.replace(/\*\*|__/g, '').trim();
  const span = /\$\$([\s\S]+?)\$\$|\$([^$]+)\$|\\\(([\s\S]+?)\\\)|\\\[([\s\S]+?)\\\]/.exec(x);
  if (span) return (span[1] ?? span[2] ?? span[3] ?? span[4]).trim();
  const cut = /\.(?:\s|$)/.exec(x);
  if (cut) x = x.slice(0, cut.index);
  return x.replace(/[\s.,;:!]+$/, '').trim();
}

function extractFromText(text: string, afterThink: boolean): Extraction | null {
  const b = findLastBoxed(text);
  if (b) return { answer: b.content, method: b.method };
  let best: { end: number; start: number; method: string } | null = null;
  for (const [re, method] of PHRASE_RES) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) {
      if (!best || m.index > best.start) best = { start: m.index, end: m.index + m[0].length, method };
    }
  }
  if (best) {
    let rest = text.slice(best.end);
    const lines = rest.split('\n');
    rest = lines.find((l) => l.replace(/\*\*|__/g, '').trim() !== '') ?? '';
    const ans = cleanPhraseAnswer(rest);
    if (ans) return { answer: ans, method: best.method };
  }
  const h = /####\s*([^\n]+)\s*$/.exec(text.trimEnd());
  if (h) return { answer: h[1].trim(), method: 'hashes' };
  const t = text.trim();
  if (afterThink) {
    if (t && t.length <= 80 && t.split('\n').length <= 2) return { answer: cleanPhraseAnswer(stripDelims(t)) || t, method: 'after_think' };
  } else if (t && t.length <= 40 && !t.includes('\n')) return { answer: stripDelims(t).replace(/[\s.]+$/, ''), method: 'short_response' };
  return null;
}

/**
 * The final answer of a model response: the last \boxed{…}/\fbox{…} (nested braces handled), else the last
 * "final answer is X" / "The answer is X" / "Answer: X", else "#### X", else the text after </think> when short.
 * The <think>…</think> part is searched only when the final part holds no answer (reasoning has boxed drafts);
 * an unclosed <think> (a truncated generation) has no answer.
 */
export function extractAnswer(response: string): Extraction {
  if (!response || !response.trim()) return { answer: null, method: 'empty' };
  const closeIdx = response.lastIndexOf('</think>');
  if (closeIdx < 0) {
    if (response.includes('<think>')) return { answer: null, method: 'unclosed_think' };
    return extractFromText(response, false) ?? { answer: null, method: 'none' };
  }
  const r = extractFromText(response.slice(closeIdx + 8), true);
  if (r) return r;
  const think = response.slice(0, closeIdx).replace(/^[\s\S]*?<think>/, '');
  const t = extractFromText(think, false);
  if (t && t.method !== 'short_response') return { answer: t.answer, method: `${t.method}_in_think` };
  return { answer: null, method: 'none' };
}

// ---------------------------------------------------------------------------------------------------------------
// Verdict
// ---------------------------------------------------------------------------------------------------------------

/** Verify a model response against a gold answer. Fails closed on a gold that cannot be compared. */
export function verifyMath(response: string, gold: string): MathVerification {
  const gp = parseCached(goldAnswer(gold ?? ''));
  const ex = extractAnswer(response ?? '');
  if (!gp.value) return { verdict: 'unparseable_gold', extracted: ex.answer, reason: `gold answer is not comparable (${gp.why}): ${JSON.stringify(gold)}` };
  if (ex.answer === null) return { verdict: 'no_answer', extracted: null, reason: `no final answer found (${ex.method})` };
  const eq = compareParsed(parseCached(ex.answer), gp);
  return { verdict: eq.equal ? 'correct' : 'incorrect', extracted: ex.answer, reason: `${ex.method}: ${eq.reason}` };
}
