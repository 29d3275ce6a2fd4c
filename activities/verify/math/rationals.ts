/** Exact rational arithmetic on BigInt (integers, fractions, finite decimals, scientific notation). */
import type { Rat } from './types';

function bgcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  if (b < 0n) b = -b;
  while (b) [a, b] = [b, a % b];
  return a;
}

export function mkRat(n: bigint, d: bigint = 1n): Rat | null {
  if (d === 0n) return null;
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  if (d === 1n) return { n, d };
  const g = bgcd(n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}

export const ratAdd = (a: Rat, b: Rat) => mkRat(a.n * b.d + b.n * a.d, a.d * b.d);
export const ratSub = (a: Rat, b: Rat) => mkRat(a.n * b.d - b.n * a.d, a.d * b.d);
export const ratMul = (a: Rat, b: Rat) => mkRat(a.n * b.n, a.d * b.d);
export const ratDiv = (a: Rat, b: Rat) => (b.n === 0n ? null : mkRat(a.n * b.d, a.d * b.n));
export const ratEq = (a: Rat, b: Rat) => a.n === b.n && a.d === b.d;
const bitLen = (x: bigint) => (x < 0n ? -x : x).toString(16).length * 4;

export function ratPow(a: Rat, e: bigint): Rat | null {
  if (e === 0n) return { n: 1n, d: 1n };
  const neg = e < 0n;
  if (neg) e = -e;
  if (e > 4096n || BigInt(Math.max(bitLen(a.n), bitLen(a.d))) * e > 20000n) return null;
  let r = mkRat(a.n ** e, a.d ** e);
  if (r && neg) r = ratDiv({ n: 1n, d: 1n }, r);
  return r;
}

export function bsqrt(x: bigint): bigint | null {
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

export function ratToNumber(r: Rat): number {
  const x = Number(r.n) / Number(r.d);
  if (Number.isFinite(x) || Number.isNaN(x) === false) {
    if (Number.isFinite(x)) return x;
  }
  const shift = BigInt(Math.max(bitLen(r.n), bitLen(r.d)) - 900);
  if (shift <= 0n) return x;
  return Number(r.n >> shift) / Number(r.d >> shift);
}

/** "12", "-1.25", ".5", "6.72e-5" → exact rational. */
export function decimalToRat(lit: string): Rat | null {
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
