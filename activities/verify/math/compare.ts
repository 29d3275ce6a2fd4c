/** Structural comparison of parsed values: scalars, sets, tuples/intervals, matrices, relations, choices, text. */
import {
  type Ctx,
  N_POINTS,
  REL_DECIMAL,
  REL_EXACT,
  close,
  collectVars,
  evalAt,
  isNanC,
  lazyCompile,
  scalarEq,
  scalarInfo,
  scopes,
} from './evaluate';
import { findLastBoxed } from './latex';
import { type Parsed, parseCached } from './parse';
import { mkRat } from './rationals';
import { compareNames } from './structure';
import type { Complex2, Equivalence, MathNode, MathValue } from './types';

/** "x = 3" (a bare name on one side of a single equation) → the value on the other side. */
function unwrapVarEq(v: MathValue): MathValue | null {
  if (v.kind !== 'relation' || v.ops.length !== 1 || v.ops[0] !== '=') return null;
  const [l, r] = v.parts;
  if (l.t === 'var') return { kind: 'scalar', node: r };
  if (r.t === 'var') return { kind: 'scalar', node: l };
  return null;
}

const isConstant = (n: MathNode): boolean => {
  const s = new Set<string>();
  collectVars(n, s);
  return s.size === 0;
};

/**
 * A chain of equalities that states a value: x = 36, AB = 10, f(2) = 6, 6^2 = 36, x = 2 \cdot 18 = 36. Every side
 * is a name (see `names`) or a constant, and the constant sides agree; the value is the last constant side. An
 * equation in the unknown (2x = 36, x + 1 = 36) states no value: null. Constant sides that disagree
 * (AB = 10 = 12, 6^2 = 35) make the answer self-contradictory: 'contradiction'.
 */
function statedValue(p: Extract<MathValue, { kind: 'relation' }>): MathValue | 'contradiction' | null {
  if (p.ops.some((o) => o !== '=')) return null;
  let value: MathNode | null = null;
  for (let k = 0; k < p.parts.length; k++) {
    const part = p.parts[k];
    if (isConstant(part)) {
      if (value && !scalarEq({ node: value }, { node: part }, { reason: '' })) return 'contradiction';
      value = part;
    } else if (!p.names?.[k]) return null;
  }
  return value && { kind: 'scalar', node: value };
}

/** "x = 2, y = 3, z = -1": the point's coordinates, when each item sets a distinct bare name, in the usual order. */
function assignedPoint(p: MathValue): MathValue[] | null {
  if (p.kind !== 'list' || p.items.length < 2 || p.alternatives) return null;
  const names: string[] = [];
  const values: MathValue[] = [];
  for (const it of p.items) {
    if (it.kind !== 'relation' || it.ops.length !== 1 || it.ops[0] !== '=' || it.parts[0].t !== 'var') return null;
    names.push(it.parts[0].name);
    values.push({ kind: 'scalar', node: it.parts[1] });
  }
  return names.every((n, i) => i === 0 || compareNames(names[i - 1], n) < 0) ? values : null;
}

/** a:b as the number a/b. */
const quotient = (r: Extract<MathValue, { kind: 'ratio' }>): { node: MathNode } => ({
  node: { t: 'bin', op: '/', a: r.terms[0], b: r.terms[1] },
});

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
    if (up(o1) && up(o2))
      return {
        kind: 'tuple',
        open: o1 === '<' ? '(' : '[',
        close: o2 === '<' ? ')' : ']',
        items: [sc(v.parts[0]), sc(v.parts[2])],
      };
    if (down(o1) && down(o2))
      return {
        kind: 'tuple',
        open: o2 === '>' ? '(' : '[',
        close: o1 === '>' ? ')' : ']',
        items: [sc(v.parts[2]), sc(v.parts[0])],
      };
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

function relationEq(
  p: Extract<MathValue, { kind: 'relation' }>,
  g: Extract<MathValue, { kind: 'relation' }>,
  ctx: Ctx,
): boolean {
  if (p.parts.length !== g.parts.length) {
    ctx.reason = 'relations of different shape';
    return false;
  }
  if (p.parts.length > 2) {
    const ok =
      p.ops.join() === g.ops.join() && p.parts.every((n, k) => scalarEq({ node: n }, { node: g.parts[k] }, ctx));
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
    const s = statedValue(p);
    if (s === 'contradiction') {
      ctx.reason = 'the equation contradicts itself (its constant sides differ)';
      return false;
    }
    const u = s ?? unwrapVarEq(p) ?? toInterval(p);
    if (u) return valuesEq(u, g, ctx);
  }
  if (g.kind === 'relation' && p.kind !== 'relation') {
    const u = unwrapVarEq(g) ?? toInterval(g);
    if (u) return valuesEq(p, u, ctx);
  }
  switch (g.kind) {
    case 'scalar':
      if (p.kind === 'ratio' && p.terms.length === 2) {
        const ok = scalarEq(quotient(p), g, ctx);
        ctx.reason = ok ? 'ratio a:b equals the value a/b' : 'ratio a:b differs from the value';
        return ok;
      }
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
      else if (g.open === '(' && g.close === ')') items = assignedPoint(p);
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
    case 'ratio': {
      if (p.kind === 'scalar' && g.terms.length === 2) {
        const ok = scalarEq(p, quotient(g), ctx);
        ctx.reason = ok ? 'the value a/b equals the ratio a:b' : 'the value differs from the ratio';
        return ok;
      }
      if (p.kind !== 'ratio' || p.terms.length !== g.terms.length) {
        ctx.reason = `expected a ratio of ${g.terms.length} terms, got a ${p.kind}`;
        return false;
      }
      const ok = g.terms.every((gt, k) => scalarEq({ node: p.terms[k] }, { node: gt }, ctx));
      ctx.reason = ok ? 'ratios match term by term' : 'ratios differ';
      return ok;
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
    .replace(/\\lor(?![A-Za-z])/g, 'or')
    .replace(/[\s{}\\"'`*]/g, '')
    .replace(/\.+$/, '')
    .toLowerCase();

const CHOICE_PRED_RES: RegExp[] = [
  /^\(([A-Ja-j])\)(?:\s|$|[.:,])/,
  /^([A-J])(?:\)|\.|:|,)?(?:\s|$)/,
  /^(?:option|choice|answer)\s*:?\s*\(?([A-Ja-j])\)?(?:\s|$|[.:,])/i,
];

/** Another option letter after the first ("A, B", "A \\lor B", "(A) or (C)"): several candidates, not one answer. */
const OTHER_LETTER_RE = /(?:^|[^A-Za-z\\])(?:\([A-Ja-j]\)|[A-J]\)?)(?![A-Za-z])/;

function choiceLetter(norm: string): string | null {
  const s = norm.trim();
  for (const re of CHOICE_PRED_RES) {
    const m = re.exec(s);
    if (m) return OTHER_LETTER_RE.test(s.slice(m[0].length)) ? null : m[1].toUpperCase();
  }
  return null;
}

function scaleScalar(v: MathValue, by: string): MathValue | null {
  if (v.kind !== 'scalar') return null;
  const d: MathNode = { t: 'num', v: by, r: mkRat(BigInt(by))!, dec: false };
  return { kind: 'scalar', node: { t: 'bin', op: '/', a: v.node, b: d } };
}

export function compareParsed(pred: Parsed, gold: Parsed): Equivalence {
  const g = gold.value;
  if (!g) return { equal: false, reason: `unparseable gold (${gold.why})` };
  if (!pred.norm) return { equal: false, reason: 'empty prediction' };
  if (g.kind === 'choice') {
    const l = pred.value?.kind === 'choice' ? pred.value.letter : choiceLetter(pred.norm);
    return l === g.letter
      ? { equal: true, reason: `choice ${g.letter}` }
      : { equal: false, reason: `choice ${l ?? '?'} vs ${g.letter}` };
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
    if ((alt && valuesEq(alt, g, c2)) || (galt && valuesEq(p, galt, c2)))
      return { equal: true, reason: `${c2.reason} (percent as fraction)` };
  }
  return { equal: false, reason: ctx.reason || 'not equivalent' };
}

/** Gold answers sometimes arrive as a whole solution: take its "#### x" or last \boxed{…}. */
export function goldAnswer(gold: string): string {
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
