/**
 * Scalar evaluation: exact rationals first, then plain doubles, then mathjs (complex-capable) only when needed;
 * expressions with variables are sampled at fixed pseudo-random points.
 */
import { all, create, type EvalFunction } from 'mathjs';
import { BoundedCache } from './cache';
import { bsqrt, mkRat, ratAdd, ratDiv, ratEq, ratMul, ratPow, ratSub, ratToNumber } from './rationals';
import { NotMath } from './tokenise';

import type { Complex2, MathNode, Rat, ScalarInfo } from './types';

// One private mathjs instance (isolated from any global config change); compiled expressions cached.
const math = create(all, { number: 'number', predictable: false });
const compiled = new BoundedCache<string, EvalFunction | null>(20000);

export function clearCompiled(): void {
  compiled.clear();
}

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

export function collectVars(n: MathNode, out: Set<string>): void {
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
export const N_POINTS = 6;
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

export function scalarInfo(v: { node: MathNode; info?: ScalarInfo }): ScalarInfo {
  if (v.info) return v.info;
  const vars = new Set<string>();
  collectVars(v.node, vars);
  const info: ScalarInfo = {
    vars: [...vars].sort(),
    rat: vars.size ? null : exactRat(v.node),
    dec: hasDecimal(v.node),
  };
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
export function evalAt(
  node: MathNode,
  scope: Record<string, number>,
  mathjsScope: () => Record<string, number>,
  fn: () => EvalFunction | null,
): Complex2 {
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

export function lazyCompile(node: MathNode): () => EvalFunction | null {
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

export function scopes(vars: string[], p: number): [Record<string, number>, () => Record<string, number>] {
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

/** Real value of a constant (variable-free) expression; null when it has variables or is not a finite real. */
export function realValue(node: MathNode): number | null {
  const v = { node };
  if (scalarInfo(v).vars.length) return null;
  const c = scalarVals(v)[0];
  return Number.isFinite(c.re) && Math.abs(c.im) <= 1e-12 * Math.max(1, Math.abs(c.re)) ? c.re : null;
}

export const isNanC = (c: Complex2) => Number.isNaN(c.re) || Number.isNaN(c.im);

export function close(a: Complex2, b: Complex2, rel: number, abs: number): boolean {
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

export const REL_EXACT = 1e-9;
export const REL_DECIMAL = 1e-6;
/** Absolute slack only for floating-point cancellation around zero (sin π vs 0); exact rationals never use it. */
const ABS_EPS = 1e-13;

export interface Ctx {
  reason: string;
}

export function scalarEq(
  p: { node: MathNode; info?: ScalarInfo },
  g: { node: MathNode; info?: ScalarInfo },
  ctx: Ctx,
): boolean {
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
