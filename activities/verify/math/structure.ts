/** Structure parser: tokens → MathValue (lists and sets, tuples and intervals, matrices, relations, scalars). */
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

const isComma = (t: Tok) => t.k === 'op' && (t.v === ',' || t.v === 'cup');

function flattenPm(v: MathValue): MathValue[] {
  return v.kind === 'list' && v.pm ? v.items : [v];
}

export function parseStruct(toks: Tok[], lo: number, hi: number): MathValue {
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
