/** Parse entry point: raw answer → normalised string → comparable value, cached per input string. */
import { BoundedCache } from './cache';
import { clearCompiled } from './evaluate';
import { normalizeAnswer } from './normalise';
import { decimalToRat, mkRat } from './rationals';
import { parseStruct } from './structure';
import { NotMath, tokenize, type Tok } from './tokenise';
import type { MathValue, Rat } from './types';

export interface Parsed {
  norm: string;
  value: MathValue | null;
  pct: boolean;
  why: string;
}

const parseCache = new BoundedCache<string, Parsed>(50000);

/** Empties the parse and compile caches (the benchmark measures verification without warm caches). */
export function clearMathCaches(): void {
  parseCache.clear();
  clearCompiled();
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
      return {
        value: { kind: 'base', digits: bm[1].toUpperCase().replace(/^0+(?=.)/, ''), base },
        why: 'base numeral',
      };
    }
  }
  let toks = tokenize(norm);
  if (toks === null) {
    return PLAIN_TEXT_RE.test(norm)
      ? { value: { kind: 'text', text: norm }, why: 'text' }
      : { value: null, why: 'unknown LaTeX' };
  }
  // in an equation a run of two to four capitals names points (ABC = 10, [ABCD] = 12), it is not a word
  if (toks.some((t) => t.k === 'op' && t.v === '='))
    toks = toks.flatMap((t) =>
      t.k === 'word' && /^[A-Z]{2,4}$/.test(t.v) ? [...t.v].map((v): Tok => ({ k: 'id', v })) : [t],
    );
  const w = toks.findIndex((t) => t.k === 'word');
  if (w >= 0) {
    // among words, "or" is a word again (normalisation made it a list separator for math: x = 2 or x = 3)
    toks = toks.map((t): Tok => (t.k === 'op' && t.v === 'or' ? { k: 'word', v: 'or' } : t));
    // "12 eggs": a value followed by a few plain words → the value; otherwise the whole thing is text
    const tail = toks.slice(w);
    if (
      w > 0 &&
      tail.length <= 3 &&
      tail.every((t) => t.k === 'word' || t.k === 'id') &&
      toks.slice(0, w).every((t) => t.k !== 'word') &&
      /\d/.test(norm)
    ) {
      toks = toks.slice(0, w);
    } else if (PLAIN_TEXT_RE.test(norm) || toks.every((t) => t.k === 'word')) {
      return {
        value: { kind: 'text', text: toks.every((t) => t.k === 'word') ? toks.map((t) => t.v).join(' ') : norm },
        why: 'text',
      };
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

export function parseCached(raw: string): Parsed {
  let p = parseCache.get(raw);
  if (p) return p;
  const pct = /%|\\%|\bpercent\b/i.test(raw);
  const norm = normalizeAnswer(raw);
  // an answer wholly inside \text{…} made of words is text ("\text{No}" is not the product N·o)
  const tm = WHOLE_TEXT_RE.exec(raw);
  const { value, why } =
    tm && !CHOICE_GOLD_RE.test(norm)
      ? { value: { kind: 'text', text: norm } as MathValue, why: 'text' }
      : parseNormalized(norm);
  p = { norm, value, pct, why };
  parseCache.set(raw, p);
  return p;
}

/** Parse an answer (raw LaTeX) into a comparable value; null when it is not comparable (fail closed). */
export function parseValue(s: string): MathValue | null {
  return parseCached(s).value;
}
