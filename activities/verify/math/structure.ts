/** Structure parser: tokens → MathValue (lists and sets, tuples and intervals, matrices, relations, scalars). */
import { realValue } from './evaluate';
import { ExprParser, expandPm, hasPm, isOp } from './expression';
import { NotMath, type Tok } from './tokenise';
import type { MathNode, MathValue } from './types';

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

const isComma = (t: Tok) => t.k === 'op' && (t.v === ',' || t.v === 'cup' || t.v === 'or');
const isOr = (t: Tok) => t.k === 'op' && t.v === 'or';

function flattenPm(v: MathValue): MathValue[] {
  return v.kind === 'list' && v.pm ? v.items : [v];
}

export function parseStruct(toks: Tok[], lo: number, hi: number): MathValue {
  if (lo >= hi) throw new NotMath('empty');
  // 1. top-level list: "1, -2", "(0,9) \cup (9,36)"
  const parts = splitTop(toks, lo, hi, isComma);
  if (parts.length > 1) {
    const items = parts.flatMap(([a, b]) => flattenPm(parseStruct(toks, a, b)));
    return parts.some(([, b]) => b < hi && isOr(toks[b]))
      ? { kind: 'list', items, alternatives: true }
      : { kind: 'list', items };
  }
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
    return {
      kind: 'list',
      items: splitTop(toks, lo + 1, hi - 1, isComma).flatMap(([a, b]) => flattenPm(parseStruct(toks, a, b))),
    };
  }
  if (hi - lo === 1 && first.k === 'cmd' && first.v === 'emptyset') return { kind: 'list', items: [] };
  // 4. tuple / point / interval
  if (
    first.k === 'op' &&
    (first.v === '(' || first.v === '[') &&
    (isOp(last, ')') || isOp(last, ']')) &&
    matchTok(toks, lo, hi) === hi - 1
  ) {
    const inner = splitTop(toks, lo + 1, hi - 1, isComma);
    if (inner.length >= 2)
      return { kind: 'tuple', open: first.v, close: last.v, items: inner.map(([a, b]) => parseStruct(toks, a, b)) };
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
    const approx = ops.indexOf('~');
    if (approx >= 0) return withoutApproximation(toks, rel, ops, approx);
    const values = rel.map(([a, b]) => parseStruct(toks, a, b));
    if (values.every((v) => v.kind === 'scalar')) {
      return {
        kind: 'relation',
        parts: values.map((v) => (v as { node: MathNode }).node),
        ops,
        names: rel.map(([a, b]) => isNameRange(toks, a, b)),
      };
    }
    if (values.length === 2 && ops[0] === '=') {
      // "S = \{1, 2\}", "x = (1, 2)": a name bound to a structured value
      if (isSymbolRange(toks, rel[0][0], rel[0][1])) return values[1];
      const point = namedPoint(values[0], values[1]);
      if (point) return point;
    }
    throw new NotMath('relation between structures');
  }
  // 6. ratio: 3:4, 1:2:3
  const terms = splitTop(toks, lo, hi, (t) => isOp(t, ':'));
  if (terms.length > 1) {
    const values = terms.map(([a, b]) => parseStruct(toks, a, b));
    if (!values.every((v) => v.kind === 'scalar')) throw new NotMath('ratio of structures');
    return { kind: 'ratio', terms: values.map((v) => (v as { node: MathNode }).node) };
  }
  // 7. scalar expression
  const node = new ExprParser(toks, lo, hi).parseFull();
  if (hasPm(node))
    return { kind: 'list', pm: true, items: expandPm(node).map((n): MathValue => ({ kind: 'scalar', node: n })) };
  return { kind: 'scalar', node };
}

/**
 * "(x, y) = (2, -1)": the point, when the names on the left are distinct bare names in their usual (sorted) order —
 * (y, x) = (2, -1) would make the reader guess which coordinate is which, so it is not read.
 */
function namedPoint(names: MathValue, point: MathValue): MathValue | null {
  if (names.kind !== 'tuple' || point.kind !== 'tuple' || names.open !== '(' || names.close !== ')') return null;
  if (point.open !== '(' || point.close !== ')' || names.items.length !== point.items.length) return null;
  const keys = names.items.map((v) => (v.kind === 'scalar' && v.node.t === 'var' ? v.node.name : null));
  return keys.every((k, i) => k !== null && (i === 0 || compareNames(keys[i - 1]!, k) < 0)) ? point : null;
}

/** Order of variable names: x < y < z, a_2 < a_10. */
export const compareNames = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });

/**
 * "2\sqrt{2} \approx 2.83", "x = 2\sqrt2 \approx 2.83": the exact part is the answer. What follows \approx must be a
 * decimal that agrees with it — rounded (within half a unit of its last digit) or truncated — or the answer
 * contradicts itself and is not read; an approximation alone ("x \approx 36") is no exact answer.
 */
function withoutApproximation(toks: Tok[], rel: Array<[number, number]>, ops: string[], approx: number): MathValue {
  if (ops.slice(approx).some((o) => o !== '~')) throw new NotMath('relation after an approximation');
  const exact = parseStruct(toks, rel[0][0], rel[approx][1]);
  let node: MathNode | null = null;
  if (exact.kind === 'scalar') node = exact.node;
  else if (exact.kind === 'relation' && exact.ops.every((o) => o === '=')) node = exact.parts[exact.parts.length - 1];
  const v = node && realValue(node);
  if (v === null) throw new NotMath('no exact value before the approximation');
  for (let k = approx + 1; k < rel.length; k++) {
    const a = decimalLiteral(toks, rel[k][0], rel[k][1]);
    if (!a) throw new NotMath('the approximation is not a decimal');
    const d = Math.abs(v - a.value);
    const eps = 1e-12 * Math.max(1, Math.abs(v));
    const rounded = d <= a.unit / 2 + eps;
    const truncated =
      Math.sign(v) === Math.sign(a.value) &&
      Math.abs(a.value) <= Math.abs(v) + eps &&
      Math.abs(v) < Math.abs(a.value) + a.unit;
    if (!rounded && !truncated) throw new NotMath('the approximation contradicts the exact value');
  }
  return exact;
}

/** A signed decimal literal (2.83, -0.5, 36, 6.02e23) and one unit of its last digit. */
function decimalLiteral(toks: Tok[], lo: number, hi: number): { value: number; unit: number } | null {
  const neg = isOp(toks[lo], '-');
  const t = toks[neg ? lo + 1 : lo];
  if (hi - lo !== (neg ? 2 : 1) || t.k !== 'num' || t.r) return null;
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t.v);
  if (!m) return null;
  const value = Number(t.v.startsWith('.') ? '0' + t.v : t.v);
  return { value: neg ? -value : value, unit: 10 ** (Number(m[3] ?? 0) - (m[2] ?? '').length) };
}

/**
 * Written as the name of a quantity rather than an expression in it: letters (x, AB, \theta), each possibly
 * subscripted (a_5, S_{10}), possibly applied to constant arguments or capital letters (f(2), P(A)), or an area in
 * brackets ([ABC]).
 */
function isNameRange(toks: Tok[], lo: number, hi: number): boolean {
  if (hi - lo >= 3 && isOp(toks[lo], '[') && isOp(toks[hi - 1], ']') && matchTok(toks, lo, hi) === hi - 1)
    return isNameRange(toks, lo + 1, hi - 1);
  let k = lo;
  while (k < hi && toks[k].k === 'id') {
    k++;
    if (!isOp(toks[k], '_')) continue;
    k++;
    if (isOp(toks[k], '{')) {
      const e = matchTok(toks, k, hi);
      if (e < 0) return false;
      k = e + 1;
    } else if (toks[k] && (toks[k].k === 'num' || toks[k].k === 'id')) k++;
    else return false;
  }
  if (k === lo) return false;
  if (k < hi && isOp(toks[k], '(')) {
    if (matchTok(toks, k, hi) !== hi - 1 || hi - k < 3) return false;
    // constant arguments, or an event or point (P(A)): f(x) is a function, not one value
    for (let j = k + 1; j < hi - 1; j++)
      if ((toks[j].k === 'id' && !/^[A-Z]$/.test(toks[j].v)) || toks[j].k === 'word') return false;
    return true;
  }
  return k === hi;
}

/** A bare name: one letter or Greek letter, optionally subscripted (x, x_1, a_{n}, \theta). */
function isSymbolRange(toks: Tok[], lo: number, hi: number): boolean {
  if (hi <= lo || toks[lo].k !== 'id') return false;
  if (hi - lo === 1) return true;
  return isOp(toks[lo + 1], '_');
}
