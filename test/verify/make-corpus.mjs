#!/usr/bin/env node
// Builds the labelled corpus of the math verifier (see README.md in this folder):
//
//   node test/verify/make-corpus.mjs [path/to/shared/data/benchmarks] [--out corpus.jsonl]     (default: stdout)
//
// The tests and the benchmark build it into a temp dir at run time; it is not committed. Only the benchmarks' gold
// ANSWERS are read — never their problems or reference solutions: every response's reasoning is synthetic filler.
// Deterministic (seeded). Labels never come from the verifier under test: every label is fixed by how the row
// was made (an equivalent rewrite of the gold → true, a perturbation or a known-wrong approximation → false), and
// the hand-written rows were labelled by hand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const outFlag = argv.indexOf('--out');
const outPath = outFlag >= 0 ? argv[outFlag + 1] : null;
const positional = argv.filter((a, k) => a !== '--out' && (outFlag < 0 || k !== outFlag + 1));
const benchDir = positional[0] ?? path.resolve(here, '../../../shared/data/benchmarks');
if (!fs.existsSync(path.join(benchDir, 'math500.jsonl'))) {
  console.error(`make-corpus: no math500.jsonl in ${benchDir} (pass the benchmarks folder as the first argument)`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------------

function mulberry32(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rng = mulberry32(20240611);
const pick = (arr) => arr[Math.floor(rng() * arr.length)];
const gcd = (a, b) => (b ? gcd(b, a % b) : Math.abs(a));

function matchBrace(s, j) {
  let depth = 0;
  for (let k = j; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\') {
      k++;
      continue;
    }
    if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return k;
  }
  return -1;
}

// Synthetic reasoning: sentences drawn (seeded) from a pool of generic solution steps with small random numbers.
// It mentions the gold value and the perturbed one in passing, as real reasoning does, so that an extractor that
// grabs a value from the reasoning instead of the final answer is caught. Never any benchmark text.
const OPENERS = [
  'Let me set up the problem carefully before computing anything.',
  'We start by writing down what is given and what is asked.',
  'First, I will restate the conditions in symbols.',
  'Let us name the unknown quantity and translate the statement.',
  'Okay, so I need to be careful with the definitions here.',
];
const STEPS = [
  () => `Let $x$ denote the unknown, so the first condition reads $${1 + Math.floor(rng() * 9)}x + ${Math.floor(rng() * 20)} = ${20 + Math.floor(rng() * 80)}$.`,
  () => `Subtracting the two equations eliminates $y$ and leaves a single linear relation.`,
  () => `Multiplying both sides by $${2 + Math.floor(rng() * 8)}$ clears the denominators.`,
  () => `By symmetry it is enough to consider the case $a \\ge b$.`,
  () => `The discriminant is $${Math.floor(rng() * 50)}^2 - 4 \\cdot ${1 + Math.floor(rng() * 9)} \\cdot ${1 + Math.floor(rng() * 9)}$, which we simplify next.`,
  () => `Expanding the product and collecting like terms gives a quadratic in $t$.`,
  () => `Applying the Pythagorean theorem to the right triangle with legs $${3 + Math.floor(rng() * 9)}$ and $${3 + Math.floor(rng() * 9)}$ gives the hypotenuse.`,
  () => `Now I substitute back into the original expression to check consistency.`,
  () => `There are $${2 + Math.floor(rng() * 10)}$ cases to count, and they do not overlap.`,
  () => `Using the identity $\\sin^2\\theta + \\cos^2\\theta = 1$ simplifies the numerator.`,
  () => `Hmm, wait, I should double-check the sign of the middle term.`,
  () => `The sum telescopes, leaving only the first and the last terms.`,
  () => `Reducing modulo $${2 + Math.floor(rng() * 11)}$ shows that only one residue class works.`,
  () => `Dividing through by the common factor keeps the equation equivalent.`,
];
const MENTIONS = [
  (g) => `At this point one candidate value is $${g}$, but that still needs checking.`,
  (g) => `Plugging in, the intermediate quantity comes out as $${g}$.`,
  (g) => `A quick estimate suggests something like $${g}$.`,
];

function filler(mentions = []) {
  const out = [pick(OPENERS)];
  const n = 3 + Math.floor(rng() * 6);
  const at = new Set(mentions.map(() => 1 + Math.floor(rng() * n)));
  for (let k = 0; k < n; k++) {
    out.push(pick(STEPS)());
    if (at.has(k) && mentions.length) out.push(pick(MENTIONS)(mentions.shift()));
  }
  for (const g of mentions) out.push(pick(MENTIONS)(g));
  return out.join(' ');
}

/** Numeric value of a simple radical/π expression (generator only; the strings are our own benchmark golds). */
function numericValue(g) {
  let s = g.replace(/\\left|\\right/g, '').replace(/\\dfrac/g, '\\frac').replace(/\s+/g, ' ');
  s = s.replace(/\\sqrt\s*\{(\d+)\}/g, 'Math.sqrt($1)');
  for (let k = 0; k < 6; k++) s = s.replace(/\\frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}/g, '(($1)/($2))').replace(/\\frac\s*(\d)\s*(\d)/g, '(($1)/($2))');
  s = s
    .replace(/\\sqrt\s*\{([^{}]+)\}/g, 'Math.sqrt($1)')
    .replace(/\\sqrt\s*(\d)/g, 'Math.sqrt($1)')
    .replace(/\\pi/g, 'Math.PI')
    .replace(/(\d|\))\s*(Math)/g, '$1*$2')
    .replace(/(\d)\s*\(/g, '$1*(')
    .replace(/\^/g, '**')
    .replace(/\\cdot/g, '*');
  if (!/^[\d\s+\-*/().Mathsqrtpi,PI]+$/.test(s)) return null;
  try {
    const v = Function(`"use strict"; return (${s});`)();
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Split at top-level commas (outside any brackets). */
function splitTop(s) {
  const out = [];
  let depth = 0;
  let start = 0;
  for (let k = 0; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\' && (s[k + 1] === '{' || s[k + 1] === '}')) {
      depth += s[k + 1] === '{' ? 1 : -1;
      k++;
      continue;
    }
    if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (ch === ',' && depth === 0) {
      out.push(s.slice(start, k).trim());
      start = k + 1;
    }
  }
  out.push(s.slice(start).trim());
  return out;
}

/** Top-level additive terms of a polynomial-like string: "x^2 - 3x + 1" → ["x^2", "-3x", "+1"]. */
function terms(s) {
  const out = [];
  let depth = 0;
  let cur = '';
  for (let k = 0; k < s.length; k++) {
    const ch = s[k];
    if ('({'.includes(ch)) depth++;
    if (')}'.includes(ch)) depth--;
    if ((ch === '+' || ch === '-') && depth === 0 && cur.trim() !== '') {
      out.push(cur.trim());
      cur = ch;
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out.map((t) => (/^[+-]/.test(t) ? t.replace(/^([+-])\s*/, '$1') : '+' + t));
}
const joinTerms = (ts) => ts.map((t, k) => (k === 0 ? t.replace(/^\+/, '') : ` ${t[0]} ${t.slice(1)}`)).join('');

const sig = (x, n) => Number(x.toPrecision(n)).toString();
const relErr = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300);

// ---------------------------------------------------------------------------------------------------------------
// equivalent rewrites (label true) and perturbations (label false) of a gold answer
// ---------------------------------------------------------------------------------------------------------------

const HAND = {
  'p - q': { pos: ['-q + p', 'p-q'], neg: ['q - p', 'p + q'] },
  '\\cot x': { pos: ['\\frac{\\cos x}{\\sin x}', '\\frac{1}{\\tan x}'], neg: ['\\tan x', '\\cos x'] },
  '(a+5)(b+2)': { pos: ['(b+2)(a+5)', 'ab + 2a + 5b + 10'], neg: ['(a+2)(b+5)', 'ab + 10'] },
  '2k+2': { pos: ['2(k+1)', '2 + 2k'], neg: ['2k+1', '2n+2'] },
  '2k': { pos: ['k \\cdot 2', '2 k'], neg: ['k', 'k^2'] },
  '3R^2': { pos: ['3 R^2', 'R^2 \\cdot 3'], neg: ['3R', '9R^2'] },
  '5r^5': { pos: ['5 r^{5}', 'r^5 \\cdot 5'], neg: ['5r^4', '25r^5'] },
  '\\frac{11+9a}{20}': { pos: ['\\frac{9a+11}{20}', '\\frac{11}{20} + \\frac{9a}{20}'], neg: ['\\frac{11+9a}{2}', '\\frac{11-9a}{20}'] },
  '\\text{Evelyn}': { pos: ['Evelyn', '\\text{evelyn}'], neg: ['\\text{Navin}', 'Bob'] },
  '\\text{Navin}': { pos: ['Navin', '\\textbf{Navin}'], neg: ['\\text{Evelyn}', 'Luna'] },
  '\\text{east}': { pos: ['East', '\\text{East}'], neg: ['west', '\\text{north}'] },
  '\\text{even}': { pos: ['even', '\\text{Even}'], neg: ['odd', '\\text{neither}'] },
  '\\text{ellipse}': { pos: ['Ellipse', '\\text{ellipse}'], neg: ['parabola', '\\text{hyperbola}'] },
  'x=5': { pos: ['5', 'x = 5'], neg: ['x=-5', '6'] },
  'y = 2x + 3': { pos: ['y=3+2x', '2x - y + 3 = 0'], neg: ['y = 2x - 3', 'y = 3x + 2'] },
  'y = -2x': { pos: ['y=-2x', '2x + y = 0'], neg: ['y = 2x', 'y = -\\frac{1}{2}x'] },
  '5x - 7y + 11z + 4 = 0': { pos: ['-5x + 7y - 11z - 4 = 0', '5x-7y+11z=-4'], neg: ['5x - 7y + 11z - 4 = 0', '5x + 7y + 11z + 4 = 0'] },
  'x \\in [-2,7]': { pos: ['[-2,7]', '-2 \\le x \\le 7'], neg: ['(-2,7)', '[-2,7)'] },
  '1 \\pm \\sqrt{19}': { pos: ['1+\\sqrt{19}, 1-\\sqrt{19}', '1-\\sqrt{19},1+\\sqrt{19}'], neg: ['1+\\sqrt{19}', '1 \\pm \\sqrt{17}'] },
  '3 \\pm 2 \\sqrt{2}': { pos: ['3+2\\sqrt2, 3-2\\sqrt2', '3 \\pm \\sqrt{8}'], neg: ['3+2\\sqrt{2}', '3 \\pm \\sqrt{2}'] },
  '\\{1\\pm\\sqrt{5},-2\\}': { pos: ['-2, 1+\\sqrt5, 1-\\sqrt5', '\\{1+\\sqrt{5}, 1-\\sqrt{5}, -2\\}'], neg: ['1+\\sqrt5, 1-\\sqrt5', '\\{1\\pm\\sqrt{5},2\\}'] },
  '(0,9) \\cup (9,36)': { pos: ['(9,36) \\cup (0,9)', '(0, 9)\\cup(9, 36)'], neg: ['(0,36)', '[0,9) \\cup (9,36)'] },
  '(2,12) \\cup (12,102)': { pos: ['(12,102) \\cup (2,12)', '(2, 12) \\cup (12, 102)'], neg: ['(2,102)', '(2,12] \\cup (12,102)'] },
  '(-\\infty, 2) \\cup (3, \\infty)': { pos: ['(3,\\infty) \\cup (-\\infty,2)', 'x<2 \\text{ or } x>3'], neg: ['(-\\infty, 2] \\cup [3, \\infty)', '(2,3)'] },
  '6 - 5i': { pos: ['-5i + 6', '6-5i'], neg: ['6 + 5i', '-6 + 5i'] },
  '6+9i': { pos: ['9i+6', '6 + 9 i'], neg: ['6-9i', '9+6i'] },
  '-2 + 7i': { pos: ['7i - 2', '-2+7i'], neg: ['2 - 7i', '-2 - 7i'] },
  '1+274i': { pos: ['274i + 1', '1 + 274 i'], neg: ['1-274i', '274+i'] },
  '1 - 12i': { pos: ['-12i + 1', '1-12i'], neg: ['1+12i', '-1-12i'] },
  '1+2i': { pos: ['2i+1', '1 + 2i'], neg: ['1-2i', '2+i'] },
  '15x - 80': { pos: ['-80 + 15x', '5(3x-16)'], neg: ['15x + 80', '15x - 8'] },
  '-13x+3': { pos: ['3 - 13x', '-(13x - 3)'], neg: ['13x+3', '-13x-3'] },
  '6r^2-4r-24': { pos: ['2(3r^2-2r-12)', '-24 - 4r + 6r^2'], neg: ['6r^2+4r-24', '6r^2-4r+24'] },
  '8n^2 + 4n + 1': { pos: ['1 + 4n + 8n^2', '4n(2n+1)+1'], neg: ['8n^2 + 4n', '8n^2 - 4n + 1'] },
  'x^3+3x-6': { pos: ['3x + x^3 - 6', 'x^3 + 3x - 6'], neg: ['x^3+3x+6', 'x^3-3x-6'] },
  '11 \\sqrt{5} + 11': { pos: ['11(\\sqrt5+1)', '11 + 11\\sqrt{5}'], neg: ['11\\sqrt{5}', '11\\sqrt{6}+11'] },
  '18+2\\pi': { pos: ['2\\pi + 18', '2(9+\\pi)'], neg: ['18+\\pi', '24.28'] },
  '1+2\\sqrt{3}': { pos: ['2\\sqrt3 + 1', '1+\\sqrt{12}'], neg: ['1+3\\sqrt{2}', '4.46'] },
};

function simpleFrac(g) {
  const m =
    /^(-?)\\[dt]?frac\s*\{(\d+)\}\s*\{(\d+)\}$/.exec(g) ??
    /^(-?)\\[dt]?frac\s*(\d)\s*(\d)$/.exec(g) ??
    /^(-?)\\[dt]?frac\s*(\d)\s*\{(\d+)\}$/.exec(g) ??
    /^(-?)\\[dt]?frac\s*\{(\d+)\}\s*(\d)$/.exec(g);
  return m ? { neg: m[1] === '-', a: Number(m[2]), b: Number(m[3]) } : null;
}

function terminatingDecimal(a, b) {
  let d = b / gcd(a, b);
  while (d % 2 === 0) d /= 2;
  while (d % 5 === 0) d /= 5;
  return d === 1 ? String(a / b) : null;
}

/** → { cat, pos: string[], neg: string[] } or null when the generator has no safe rewrite for this gold. */
function variants(g) {
  if (HAND[g]) {
    const cat = /\\text/.test(g) ? 'text' : /=|\\in/.test(g) ? 'equation' : /\\pm|\\cup|\\\{/.test(g) ? 'set' : /i$/.test(g) ? 'complex' : 'expression';
    return { cat, ...HAND[g] };
  }
  let m;
  // integers
  if ((m = /^-?\d+$/.exec(g))) {
    const n = Number(g);
    const pos = [String(n), `${n}.0`];
    if (Math.abs(n) >= 1000) pos.push(n.toLocaleString('en-US'));
    if (n >= 0) pos.push(`${n} \\text{ units}`);
    const neg = [String(n + 1), String(n - 1)];
    if (n !== 0) neg.push(String(-n), String(n * 10));
    return { cat: 'integer', pos, neg };
  }
  // thousands separators
  if ((m = /^(\\\$)?(\d{1,3}(?:,(?:\\!)?\s?\d{3})+)$/.exec(g))) {
    const n = Number(m[2].replace(/,|\\!|\s/g, ''));
    return { cat: 'thousands', pos: [String(n), n.toLocaleString('en-US')], neg: [String(n + 1), (n + 1000).toLocaleString('en-US')] };
  }
  // money
  if ((m = /^\\\$(\d+(?:\.\d+)?)$/.exec(g))) {
    const x = Number(m[1]);
    return { cat: 'currency', pos: [m[1], `\\$${x.toFixed(2)}`, `${m[1]} dollars`], neg: [String(x + 1), `\\$${(x + 0.5).toFixed(2)}`] };
  }
  // degrees
  if ((m = /^(\d+)\^\\circ$/.exec(g))) {
    const n = Number(m[1]);
    return { cat: 'degrees', pos: [String(n), `${n}^{\\circ}`, `${n} degrees`, `${n}\u00b0`], neg: [String(n + 1), `${n + 10}^\\circ`, `${180 - n === n ? n + 5 : 180 - n}^\\circ`] };
  }
  // units
  if ((m = /^([\d.]+|\\frac\{\d+\}\d)\s*\\(?:text|mbox)\{\s*([a-z ]+)\}(\^2)?$/.exec(g))) {
    const x = m[1];
    const unit = m[2].trim();
    const plusOne = /^\d+(\.\d+)?$/.test(x) ? String(Math.round((Number(x) + 1) * 100) / 100) : `${x}+1`;
    return { cat: 'units', pos: [x, `${x} ${unit}${m[3] ?? ''}`, `${x}\\text{ ${unit}}`], neg: [plusOne, `${plusOne} ${unit}`] };
  }
  // mixed numbers
  if ((m = /^(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}$/.exec(g))) {
    const [w, a, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const dec = terminatingDecimal(w * b + a, b);
    const pos = [`\\frac{${w * b + a}}{${b}}`, `${w * b + a}/${b}`];
    if (dec) pos.push(dec);
    return { cat: 'mixed', pos, neg: [String(w), `\\frac{${a}}{${b}}`, `${w}\\frac{${a}}{${b + 1}}`] };
  }
  // simple fractions
  const f = simpleFrac(g);
  if (f) {
    const { a, b } = f;
    const s = f.neg ? '-' : '';
    const dec = terminatingDecimal(a, b);
    const pos = [`${s}${a}/${b}`, `${s}\\dfrac{${a}}{${b}}`, `${s}\\frac{${2 * a}}{${2 * b}}`];
    if (dec) pos.push(`${s}${dec}`);
    else pos.push(`${s}${sig(a / b, 10)}`); // within the 1e-6 decimal tolerance
    const neg = [`${s}\\frac{${a + 1}}{${b}}`, `${f.neg ? '' : '-'}\\frac{${a}}{${b}}`];
    if (a !== b) neg.push(`${s}\\frac{${b}}{${a}}`);
    if (!dec && relErr(Number((a / b).toFixed(2)), a / b) > 1e-5) neg.push(`${s}${(a / b).toFixed(2)}`); // rounded: wrong
    return { cat: 'fraction', pos, neg };
  }
  // decimals
  if ((m = /^(-?)(\d*)\.(\d+)$/.exec(g))) {
    const digits = m[3];
    const whole = m[2] || '0';
    const num = Number(whole + digits);
    const den = 10 ** digits.length;
    const k = gcd(num, den);
    const lastUp = `${m[1]}${m[2]}.${digits.slice(0, -1)}${(Number(digits.slice(-1)) + 1) % 10}`;
    return {
      cat: 'decimal',
      pos: [`${m[1]}${whole}.${digits}0`, `${m[1]}\\frac{${num / k}}{${den / k}}`, `${m[1]}${whole}.${digits}`],
      neg: [lastUp, `${m[1]}${Number(whole) + 1}.${digits}`],
    };
  }
  // base-b numerals
  if ((m = /^(\d+)_\{?(\d+)\}?$/.exec(g))) {
    const [d, b] = [m[1], Number(m[2])];
    const last = Number(d.slice(-1));
    const changed = d.slice(0, -1) + ((last + 1) % b);
    return { cat: 'base', pos: [`${d}_{${b}}`, d, `${d}_${b}`], neg: [`${changed}_${b}`, String(parseInt(d, b))] };
  }
  // multiple choice
  if ((m = /^\\text\{\(([A-E])\)\}$/.exec(g))) {
    const other = m[1] === 'A' ? 'B' : 'A';
    return { cat: 'choice', pos: [`(${m[1]})`, m[1], `\\textbf{(${m[1]})}`, `${m[1]})`], neg: [`(${other})`, other, `\\textbf{(${m[1] === 'E' ? 'D' : 'E'})}`] };
  }
  // matrices / vectors
  if (g.startsWith('\\begin{pmatrix}')) {
    const body = g.replace(/^\\begin\{pmatrix\}|\\end\{pmatrix\}$/g, '');
    const rows = body.split('\\\\').map((r) => r.split('&').map((c) => c.trim()));
    const fracify = (c) => c.replace(/^(-?)(\d+)\/(\d+)$/, '$1\\frac{$2}{$3}');
    const build = (env, rs) => `\\begin{${env}} ${rs.map((r) => r.join(' & ')).join(' \\\\ ')} \\end{${env}}`;
    const pos = [build('bmatrix', rows.map((r) => r.map(fracify))), build('pmatrix', rows)];
    if (rows.every((r) => r.length === 1)) pos.push(`(${rows.map((r) => r[0]).join(', ')})`);
    const flipped = rows.map((r, i) => r.map((c, j) => (i === 0 && j === 0 ? (c.startsWith('-') ? c.slice(1) : `-${c}`) : c)));
    const neg = [build('pmatrix', flipped)];
    if (rows.length > 1) neg.push(build('pmatrix', [...rows].reverse()));
    return { cat: 'matrix', pos, neg };
  }
  // tuples, points, intervals
  if ((m = /^(\\left)?\s*([([])(.*?)(\\right)?\s*([)\]])$/.exec(g)) && splitTop(m[3]).length >= 2 && !/\\cup/.test(g)) {
    const items = splitTop(m[3]);
    const [open, close] = [m[2], m[5]];
    const isInterval = /\\infty/.test(g) || open !== close.replace(')', '(').replace(']', '[') || items.length === 2;
    const pos = [`${open}${items.join(', ')}${close}`, `\\left${open} ${items.join(',')} \\right${close}`];
    const neg = [];
    if (isInterval && items.length === 2) neg.push(`${open === '(' ? '[' : '('}${items.join(',')}${close}`);
    if (items[0] !== items[1] && !/\\infty/.test(g)) neg.push(`${open}${[items[1], items[0], ...items.slice(2)].join(',')}${close}`);
    if (items.length > 2) neg.push(`${open}${items.slice(0, -1).join(',')}${close}`);
    if (!neg.length) neg.push(`${open}${items.join(',')}${close === ')' ? ']' : ')'}`);
    const clearlyInterval = /\\infty/.test(g) || (open === '(') !== (close === ')');
    return { cat: clearlyInterval ? 'interval' : 'tuple', pos, neg };
  }
  // bare comma lists (solutions): order-free
  if (!/[([{\\]/.test(g) && splitTop(g).length >= 2) {
    const items = splitTop(g);
    const rev = [...items].reverse();
    return {
      cat: 'set',
      pos: [rev.join(', '), `\\{${items.join(', ')}\\}`, items.map((x) => `x=${x}`).join(', ')],
      neg: [items.slice(0, -1).join(', '), [...items.slice(0, -1), String(Number(items.at(-1)) + 1)].join(', '), `(${items.join(',')})`],
    };
  }
  // radicals and pi: exact rewrites vs decimal approximations
  if (/\\sqrt|\\pi/.test(g) && !/[a-zA-Z]/.test(g.replace(/\\(sqrt|pi|d?frac|left|right)/g, ''))) {
    const v = numericValue(g);
    if (v === null) return null;
    // (only single digits lose their braces: "\sqrt 13" would mean \sqrt{1}3 in LaTeX)
    const pos = [sig(v, 12), g.replace(/\\frac/g, '\\dfrac').replace(/\\sqrt\{(\d)\}/g, '\\sqrt $1 ')];
    let m2;
    if ((m2 = /^(\d+)\s*\\sqrt\{?(\d+)\}?$/.exec(g))) pos.push(`\\sqrt{${Number(m2[1]) ** 2 * Number(m2[2])}}`);
    if ((m2 = /^(\d+)\s*\\pi$/.exec(g))) pos.push(`\\pi \\cdot ${m2[1]}`);
    const neg = [`2\\left(${g}\\right)`];
    if (relErr(Number(sig(v, 3)), v) > 1e-6) neg.push(sig(v, 3));
    if (relErr(Number(sig(v, 5)), v) > 1e-6) neg.push(sig(v, 5));
    if (g === '\\pi') neg.push('3.14', '\\frac{22}{7}');
    return { cat: 'irrational', pos, neg };
  }
  // polynomials in one or more variables: reorder the terms / flip a sign
  if (/^[\w\s^+\-{}]+$/.test(g) && /[a-z]/.test(g)) {
    const ts = terms(g);
    if (ts.length < 2) return null;
    const flipped = [...ts];
    const last = flipped.length - 1;
    flipped[last] = (flipped[last][0] === '+' ? '-' : '+') + flipped[last].slice(1);
    return { cat: 'expression', pos: [joinTerms([...ts].reverse()), joinTerms(ts)], neg: [joinTerms(flipped), joinTerms(ts.slice(0, -1))] };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// response templates (realistic model outputs)
// ---------------------------------------------------------------------------------------------------------------

const TEMPLATES = {
  r1_boxed: (r, a) => `<think>\n${r}\n\nLet me double-check that once more... yes, that holds.\n</think>\n\nTherefore, the final answer is $\\boxed{${a}}$.`,
  plain_boxed: (r, a) => `${r}\n\nSo the answer is $\\boxed{${a}}$.`,
  display_boxed: (r, a) => `${r}\n\nPutting it together:\n\\[\n\\boxed{${a}}\n\\]`,
  minerva: (r, a) => `${r}\n\nFinal Answer: The final answer is $${a}$. I hope it is correct.`,
  answer_colon: (r, a) => `${r}\n\n**Answer:** $${a}$`,
  after_think: (r, a) => `<think>\n${r}\n</think>\n\n$${a}$`,
};
const DOLLAR_TEMPLATES = new Set(['minerva', 'answer_colon', 'after_think']);

function render(template, reasoning, answer) {
  let t = template;
  // "$…$"-delimited templates cannot hold a "\$" (money) nor a long answer after </think>
  if (DOLLAR_TEMPLATES.has(t) && (/\\\$|\$/.test(answer) || answer.length > 60)) t = 'r1_boxed';
  return { text: TEMPLATES[t](reasoning, answer), template: t };
}

// ---------------------------------------------------------------------------------------------------------------
// build
// ---------------------------------------------------------------------------------------------------------------

const rows = [];
const add = (response, gold, label, category, source) => rows.push({ response, gold, label, category, source });

// 1. programmatic rows from MATH-500 golds
const math500 = fs
  .readFileSync(path.join(benchDir, 'math500.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
const templateNames = Object.keys(TEMPLATES);
let intBudget = 70;
let tIdx = 0;
for (const item of math500) {
  const v = variants(item.answer);
  if (!v) continue;
  if (v.cat === 'integer' && intBudget-- <= 0) continue;
  const src = `math500:${item.unique_id}`;
  const posA = pick(v.pos);
  const negA = pick(v.neg);
  // the gold (as written in the benchmark) and the wrong answer both appear in the reasoning in passing
  const reasoning = filler(rng() < 0.5 ? [item.answer, negA] : [negA, item.answer]);
  const tp = render(templateNames[tIdx++ % templateNames.length], reasoning, posA);
  add(tp.text, item.answer, true, v.cat, `${src} equivalent rewrite (${tp.template})`);
  const tn = render(templateNames[tIdx++ % templateNames.length], reasoning, negA);
  add(tn.text, item.answer, false, v.cat, `${src} perturbed (${tn.template})`);
  // non-integer golds: a second pair in which the reasoning holds a boxed draft of the other answer
  if (v.cat !== 'integer' && rng() < 0.35) {
    const draftWrong = `<think>\n${reasoning}\n\nSo maybe the answer is \\boxed{${negA}}? Wait, let me recheck.\n</think>\n\nThe answer is $\\boxed{${posA}}$.`;
    add(draftWrong, item.answer, true, 'think_vs_final', `${src} wrong draft in think, right final`);
    const draftRight = `<think>\n${reasoning}\n\nSo the answer is \\boxed{${posA}}. Hmm, but maybe not.\n</think>\n\nThe answer is $\\boxed{${negA}}$.`;
    add(draftRight, item.answer, false, 'think_vs_final', `${src} right draft in think, wrong final`);
  }
}

// 2. AIME (zero-padded golds) and AMC (numeric golds)
for (const f of ['aime24', 'amc23']) {
  const items = fs
    .readFileSync(path.join(benchDir, `${f}.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  for (const it of items.slice(0, 10)) {
    const gold = String(it.answer);
    const n = Number(gold);
    add(`<think>\nComputing carefully, we get ${n}.\n</think>\n\n\\boxed{${n}}`, gold, true, 'integer', `${f}:${it.id ?? it.url ?? ''} unpadded`);
    add(`<think>\nComputing carefully, we get ${n + 2}.\n</think>\n\n\\boxed{${n + 2}}`, gold, false, 'integer', `${f}:${it.id ?? it.url ?? ''} off by two`);
  }
}

// 3. GSM8K: the gold is the whole worked answer ending in "#### N"
const gsm = fs
  .readFileSync(path.join(benchDir, 'gsm8k_test.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
for (const it of gsm.slice(0, 12)) {
  const n = it.answer.split('####').pop().trim().replace(/,/g, '');
  // the gold keeps GSM8K's shape (worked text, then "#### N") with synthetic worked text
  const gold = `${filler([String(Number(n) + 1)])}\n#### ${n}`;
  add(`Let's think step by step.\n${filler([n])}\nThe answer is ${n}.`, gold, true, 'gsm8k', 'gsm8k_test answer, "The answer is N"');
  add(`Let's think step by step.\n${filler([n])}\nThe answer is ${Number(n) + 3}.`, gold, false, 'gsm8k', 'gsm8k_test answer, wrong number');
}

// 4. hand-written rows
const R = 'Let me set up the problem. Let $x$ be the unknown. From the first condition, $2x + 3 = 11$, so $2x = 8$.';
const hand = [
  // nested \boxed and extraction formats
  [`${R}\n\nThus $\\boxed{\\boxed{4}}$.`, '4', true, 'extraction'],
  [`${R}\n\n\\fbox{4}`, '4', true, 'extraction'],
  [`${R}\n\nWe get \\boxed 4.`, '4', true, 'extraction'],
  [`${R}\n\nFinal Answer: The final answer is $4$. I hope it is correct.`, '4', true, 'extraction'],
  [`${R}\n\nFinal Answer: The final answer is $5$. I hope it is correct.`, '4', false, 'extraction'],
  [`${R}\n\n**Final Answer**\n\n$$\\boxed{\\dfrac{1}{2}}$$`, '\\frac12', true, 'extraction'],
  [`${R}\n\n**Answer:** 4`, '4', true, 'extraction'],
  [`${R}\n\nThe answer is: 4.`, '4', true, 'extraction'],
  [`${R}\n\nThe answer is 4 apples.`, '4', true, 'extraction'],
  [`${R}\n\nThe answer is 40 apples.`, '4', false, 'extraction'],
  [`<think>\n${R}\n</think>\n\n4`, '4', true, 'extraction'],
  [`<think>\n${R}\n</think>\n\n**4**`, '4', true, 'extraction'],
  [`<think>\n${R}\n</think>\n\n5`, '4', false, 'extraction'],
  [`${R} So $x=4$, and the final answer is $\\boxed{x = 4}$.`, '4', true, 'extraction'],
  [`${R}\n\nThe area is $\\boxed{\\frac{\\sqrt{3}}{4}}$ square units.`, '\\frac{\\sqrt{3}}{4}', true, 'extraction'],
  [`${R}\n\nThe area is $\\boxed{\\frac{\\sqrt{3}}{2}}$ square units.`, '\\frac{\\sqrt{3}}{4}', false, 'extraction'],
  [`${R}\n\nSo $S = \\boxed{\\{1, 2, 3\\}}$.`, '\\{3,2,1\\}', true, 'extraction'],
  // think vs final
  [`<think>\n${R} so \\boxed{4}.\n</think>\n\nOn reflection the answer is $\\boxed{5}$.`, '4', false, 'think_vs_final'],
  [`<think>\n${R} so \\boxed{5}? No: 2x=8 gives 4.\n</think>\n\nThe answer is $\\boxed{4}$.`, '4', true, 'think_vs_final'],
  [`<think>\n${R} so \\boxed{5}.\n</think>\n\nThe answer is 4.`, '4', true, 'think_vs_final'],
  [`<think>\n${R} so \\boxed{4}.\n</think>\n\nThe answer is 5.`, '4', false, 'think_vs_final'],
  [`<think>\n${R} Hence x = \\boxed{4}.\n</think>`, '4', true, 'think_vs_final'],
  // truncated / missing answers (never correct)
  [`<think>\n${R} so \\boxed{4} maybe, but let me check the second condition, which says`, '4', false, 'no_answer'],
  [`${R} Then we need to consider the other case, which is much harder and requires a long computation of the sum.`, '4', false, 'no_answer'],
  ['', '4', false, 'no_answer'],
  [`<think>\n${R}\n</think>\n\nI could not determine the answer from the given information, since the system is underdetermined as stated.`, '4', false, 'no_answer'],
  // fail-closed gold
  ['\\boxed{4}', '', false, 'unparseable_gold'],
  ['\\boxed{\\frac{1}{}', '\\frac{1}{', false, 'unparseable_gold'],
  ['\\boxed{\\int_0^1 x\\,dx}', '\\int_0^1 x\\,dx', false, 'unparseable_gold'],
  ['\\boxed{\\frac12}', '\\int_0^1 x\\,dx', false, 'unparseable_gold'],
  ['\\boxed{\\angle ABC}', '\\angle ABC', false, 'unparseable_gold'],
  ['\\boxed{4}', '\\mathcal{O}(4)', false, 'unparseable_gold'],
  ['\\boxed{x^2 + \\foo}', 'x^2 + \\foo', false, 'unparseable_gold'],
  ['\\boxed{?}', '?', false, 'unparseable_gold'],
  // pi and radicals: approximations are wrong unless within 1e-6
  ['\\boxed{3.14}', '\\pi', false, 'irrational'],
  ['\\boxed{3.1416}', '\\pi', false, 'irrational'],
  ['\\boxed{3.14159265}', '\\pi', true, 'irrational'],
  ['\\boxed{\\pi}', '\\pi', true, 'irrational'],
  ['\\boxed{1.414}', '\\sqrt{2}', false, 'irrational'],
  ['\\boxed{\\sqrt{8}/2}', '\\sqrt{2}', true, 'irrational'],
  ['\\boxed{\\frac{2}{\\sqrt2}}', '\\sqrt{2}', true, 'irrational'],
  ['\\boxed{2^{1/2}}', '\\sqrt{2}', true, 'irrational'],
  ['\\boxed{\\sqrt{3}}', '\\sqrt{2}', false, 'irrational'],
  ['\\boxed{0.866}', '\\frac{\\sqrt3}{2}', false, 'irrational'],
  ['\\boxed{\\frac{\\sqrt{3}}{2}}', '\\frac{\\sqrt3}{2}', true, 'irrational'],
  ['\\boxed{\\sin 60^\\circ}', '\\frac{\\sqrt3}{2}', false, 'irrational'], // degrees inside trig are not interpreted (strict)
  ['\\boxed{\\frac{\\pi}{3}}', '60^\\circ', false, 'irrational'],
  ['\\boxed{e^2}', '\\exp(2)', true, 'irrational'],
  // intervals and inequalities
  ['\\boxed{(1,2]}', '(1,2)', false, 'interval'],
  ['\\boxed{(1,2)}', '(1,2)', true, 'interval'],
  ['\\boxed{[1,2)}', '[1,2)', true, 'interval'],
  ['\\boxed{[1,2]}', '[1,2)', false, 'interval'],
  ['\\boxed{x > 3}', '(3,\\infty)', true, 'interval'],
  ['\\boxed{x \\geq 3}', '(3,\\infty)', false, 'interval'],
  ['\\boxed{x \\geq 3}', '[3,\\infty)', true, 'interval'],
  ['\\boxed{3 < x < 5}', '(3,5)', true, 'interval'],
  ['\\boxed{3 \\le x < 5}', '(3,5)', false, 'interval'],
  ['\\boxed{(-\\infty, \\infty)}', '\\mathbb{R}', true, 'interval'],
  // sets, tuples
  ['\\boxed{\\{2, 1\\}}', '\\{1, 2\\}', true, 'set'],
  ['\\boxed{\\{1, 2, 2\\}}', '\\{1, 2\\}', false, 'set'],
  ['\\boxed{x = 2 \\text{ or } x = -3}', '-3, 2', true, 'set'],
  ['\\boxed{x = 2 \\text{ or } x = 3}', '-3, 2', false, 'set'],
  ['\\boxed{(2, 1)}', '(1, 2)', false, 'tuple'],
  ['\\boxed{(1, 2)}', '(1, 2)', true, 'tuple'],
  ['\\boxed{1, 2}', '(1, 2)', false, 'tuple'],
  ['\\boxed{(1, 2, 3)}', '(1, 2)', false, 'tuple'],
  // percent, units, thousands, currency
  ['The discount is \\boxed{20\\%}.', '20', true, 'percent'],
  ['The discount is \\boxed{20}.', '20\\%', true, 'percent'],
  ['The discount is \\boxed{0.2}.', '20\\%', true, 'percent'],
  ['The discount is \\boxed{25\\%}.', '20\\%', false, 'percent'],
  ['The rate is \\boxed{2\\%}.', '20\\%', false, 'percent'],
  ['\\boxed{12 \\text{ cm}^2}', '12', true, 'units'],
  ['\\boxed{12\\,\\text{cm}}', '12', true, 'units'],
  ['\\boxed{13 \\text{ cm}}', '12', false, 'units'],
  ['\\boxed{45 \\text{ mph}}', '45', true, 'units'],
  ['\\boxed{1,000,000}', '1000000', true, 'thousands'],
  ['\\boxed{1{,}000}', '1000', true, 'thousands'],
  ['\\boxed{1,001}', '1000', false, 'thousands'],
  ['\\boxed{1, 2}', '12', false, 'thousands'],
  ['\\boxed{\\$1,250.50}', '1250.5', true, 'currency'],
  ['\\boxed{\\$1,250}', '1250.5', false, 'currency'],
  // scientific notation
  ['\\boxed{3 \\times 10^8}', '300000000', true, 'scientific'],
  ['\\boxed{3 \\times 10^9}', '300000000', false, 'scientific'],
  ['\\boxed{1.6 \\times 10^{-19}}', '1.6e-19', true, 'scientific'],
  ['\\boxed{1.6e-18}', '1.6 \\times 10^{-19}', false, 'scientific'],
  // equations
  ['\\boxed{x = 7}', '7', true, 'equation'],
  ['\\boxed{x = -7}', '7', false, 'equation'],
  ['\\boxed{y = -\\frac{1}{2}x + 4}', 'y = 4 - \\frac{x}{2}', true, 'equation'],
  ['\\boxed{y = -\\frac{1}{2}x - 4}', 'y = 4 - \\frac{x}{2}', false, 'equation'],
  ['\\boxed{x^2 + y^2 = 25}', 'x^2+y^2=25', true, 'equation'],
  ['\\boxed{x^2 + y^2 = 5}', 'x^2+y^2=25', false, 'equation'],
  // multiple choice
  ['The correct option is \\boxed{B}.', '\\text{(B)}', true, 'choice'],
  ['The correct option is \\boxed{\\text{(B)}}.', 'B', true, 'choice'],
  ['The correct option is \\boxed{(B) 12}.', '(B)', true, 'choice'],
  ['The correct option is \\boxed{C}.', '\\text{(B)}', false, 'choice'],
  ['**Answer:** (D)', 'D', true, 'choice'],
  ['**Answer:** (E)', 'D', false, 'choice'],
  // mixed numbers
  ['\\boxed{3\\frac{1}{4}}', '\\frac{13}{4}', true, 'mixed'],
  ['\\boxed{3\\frac{1}{4}}', '\\frac{3}{4}', false, 'mixed'],
  ['\\boxed{3 1/4}', '3.25', true, 'mixed'],
  ['\\boxed{-1\\frac{1}{2}}', '-\\frac32', true, 'mixed'],
  // plain text
  ['\\boxed{\\text{Monday}}', '\\text{Monday}', true, 'text'],
  ['\\boxed{monday}', '\\text{Monday}', true, 'text'],
  ['\\boxed{\\text{Tuesday}}', '\\text{Monday}', false, 'text'],
  ['\\boxed{\\text{no}}', '\\text{No}', true, 'text'],
  ['\\boxed{\\text{yes}}', '\\text{No}', false, 'text'],
];
for (const [response, gold, label, category] of hand) add(response, gold, label, category, 'hand-written');

// 5. answer forms (appended after the rows above, which stay as they were): thousands separators written as spaces,
//    equations that state the value, approximations after the exact value, points written as assignments. Labels
//    follow from the construction: the value written is the gold (true) or a different number / a form the policy
//    rejects (false, the reason in `source`).
const SEPARATORS = ['\\,', '\\ ', '\\;', '~', '\u202f', '\u2009', '\u00a0'];
const NAMES = ['AB', 'f(2)', 'a_{5}', '[ABC]', 'P(3)', 'x', 'S_{10}'];
const formRows = (g) => {
  const out = [];
  const v = numericValue(g.replace(/^\\left|\\right$/g, ''));
  let m;
  if ((m = /^-?\d+$/.exec(g))) {
    const n = Number(g);
    const sep = pick(SEPARATORS);
    // the old product reading: n·001 = n; the number written is n001
    if (n >= 0 && n < 1000) out.push(['thousands', `${n}${sep}001`, false, 'thin-space grouping of another number (its product reading is the gold)']);
    if (Math.abs(n) >= 1000) {
      out.push(['thousands', n.toLocaleString('en-US').replace(/,/g, sep), true, 'thousands groups set apart by a space form']);
      out.push(['thousands', (n + 1000).toLocaleString('en-US').replace(/,/g, sep), false, 'another number, grouped']);
    }
    out.push(pick([
      ['relation_value', `${pick(NAMES)} = ${n}`, true, 'a name set to the value'],
      ['relation_value', `${n - 3} + 3 = ${n}`, true, 'a true equation of constants'],
    ]));
    out.push(pick([
      ['relation_value', `AB = ${n} = ${n + 1}`, false, 'constant sides that disagree'],
      ['relation_value', `2x = ${n}`, false, 'an equation in the unknown states no value'],
      ['relation_value', `x \\approx ${n}`, false, 'only an approximation'],
      ['relation_value', pick([`x \\neq ${n}`, `x > ${n}`, `x \\ge ${n}`]), false, 'not an equality with the value'],
    ]));
    return out;
  }
  const f = simpleFrac(g);
  if (f) {
    const q = (f.neg ? -1 : 1) * (f.a / f.b);
    if (formFracs-- <= 0) return out;
    out.push(['relation_value', `${pick(NAMES)} = ${g}`, true, 'a name set to the value']);
    out.push(['approximation', `${g} \\approx ${q.toFixed(3)}`, true, 'exact value, then its rounding']);
    out.push(pick([
      ['approximation', `${g} \\approx ${(q + 0.1).toFixed(3)}`, false, 'an approximation that contradicts the exact value'],
      ['approximation', `x \\approx ${q.toFixed(3)}`, false, 'only an approximation'],
    ]));
    return out;
  }
  if (/\\sqrt|\\pi/.test(g) && v !== null && !/[(),]/.test(g)) {
    out.push(['approximation', `${g} \\approx ${v.toFixed(2)}`, true, 'exact value, then its rounding']);
    out.push(pick([
      ['approximation', `${g} \\approx ${(v + Math.max(0.1, Math.abs(v) / 10)).toFixed(2)}`, false, 'an approximation that contradicts the exact value'],
      ['approximation', `x \\approx ${v.toFixed(2)}`, false, 'only an approximation'],
    ]));
    return out;
  }
  // points: a tuple that cannot be an interval (three or more items, or a first item above the second)
  if ((m = /^(?:\\left)?\s*\((.*?)(?:\\right)?\s*\)$/.exec(g)) && !/\\infty|\\cup|[a-z]\s*[+(]/.test(g.replace(/\\(?:left|right)/g, ''))) {
    const items = splitTop(m[1]);
    const vals = items.map((x) => numericValue(x));
    const point = items.length >= 3 || (items.length === 2 && vals.every((x) => x !== null) && vals[0] > vals[1]);
    if (!point || items.length > 4) return out;
    const names = /\\pi/.test(g) && items.length === 2 ? ['r', '\\theta'] : items.length === 4 ? ['a', 'b', 'c', 'd'] : ['x', 'y', 'z'];
    const assign = (ns, xs) => xs.map((x, k) => `${ns[k]} = ${x}`).join(", ");
    out.push(['assignments', assign(names, items), true, 'coordinates as assignments, names in order']);
    out.push(['assignments', `(${names.slice(0, items.length).join(', ')}) = (${items.join(', ')})`, true, 'the point with its names']);
    if (items[0] !== items[1]) out.push(['assignments', assign(names, [items[1], items[0], ...items.slice(2)]), false, 'two coordinates swapped']);
    out.push(['assignments', assign([names[1], names[0], ...names.slice(2)], [items[1], items[0], ...items.slice(2)]), false, 'names out of their usual order (policy: fail closed)']);
  }
  return out;
};
let formInts = 30;
let formFracs = 25;
for (const item of math500) {
  const g = item.answer;
  if (/^-?\d+$/.test(g) && Math.abs(Number(g)) < 1000 && formInts-- <= 0) continue;
  for (const [category, answer, label, why] of formRows(g)) {
    const tp = render(templateNames[tIdx++ % templateNames.length], filler([g]), answer);
    add(tp.text, g, label, category, `math500:${item.unique_id} ${why} (${tp.template})`);
  }
}

const many = Array.from({ length: 60 }, (_, k) => k + 1);
const formHand = [
  // the reported false accepts: a separator read as a product
  ['\\boxed{45\\,000}', '0', false, 'thousands'],
  ['\\boxed{1\\ 000}', '0', false, 'thousands'],
  ['\\boxed{1\u202f000}', '0', false, 'thousands'],
  ['\\boxed{2\\,3}', '6', false, 'thousands'],
  ['\\boxed{45\\,000}', '45000', true, 'thousands'],
  ['\\boxed{45\\;000}', '45000', true, 'thousands'],
  ['\\boxed{45\u2009000}', '45000', true, 'thousands'],
  ['\\boxed{45\u00a0000}', '45,000', true, 'thousands'],
  ['\\boxed{1,5}', '1.5', false, 'thousands'],
  ['\\boxed{(1,000)}', '1000', false, 'thousands'],
  // ratios
  ['The ratio is $\\boxed{3:4}$.', '3:4', true, 'ratio'],
  ['The ratio is $\\boxed{3 : 4}$.', '3:4', true, 'ratio'],
  ['The ratio is $\\boxed{\\frac{3}{4}}$.', '3:4', true, 'ratio'],
  ['The ratio is $\\boxed{3:4}$.', '\\frac34', true, 'ratio'],
  ['The ratio is $\\boxed{1:2:3}$.', '1:2:3', true, 'ratio'],
  ['The ratio is $\\boxed{4:3}$.', '3:4', false, 'ratio'],
  ['The ratio is $\\boxed{6:8}$.', '3:4', false, 'ratio'],
  ['The ratio is $\\boxed{1:3:2}$.', '1:2:3', false, 'ratio'],
  ['The ratio is $\\boxed{4:3}$.', '\\frac34', false, 'ratio'],
  // equations that state the value
  ['So $\\boxed{AB = 10}$.', '10', true, 'relation_value'],
  ['So $\\boxed{f(2) = 6}$.', '6', true, 'relation_value'],
  ['So $\\boxed{6^2 = 36}$.', '36', true, 'relation_value'],
  ['So $\\boxed{36 = 6^2}$.', '36', true, 'relation_value'],
  ['So $\\boxed{\\angle ABC = 30^\\circ}$.', '30^\\circ', true, 'relation_value'],
  ['So $\\boxed{AB = 10 = 12}$.', '10', false, 'relation_value'],
  ['So $\\boxed{x = 5 \\text{ or } x = 36}$.', '36', false, 'relation_value'],
  ['So $\\boxed{x \\neq 36}$.', '36', false, 'relation_value'],
  ['So $\\boxed{x > 36}$.', '36', false, 'relation_value'],
  ['So $\\boxed{x \\approx 36}$.', '36', false, 'relation_value'],
  ['So $\\boxed{6^2 = 35}$.', '35', false, 'relation_value'],
  // approximations
  ['Hence $\\boxed{2\\sqrt{2} \\approx 2.83}$.', '2\\sqrt{2}', true, 'approximation'],
  ['Hence $\\boxed{2\\sqrt{2} \\approx 2.83}$.', '2.83', false, 'approximation'],
  ['Hence $\\boxed{\\pi \\approx 3.14}$.', '\\pi', true, 'approximation'],
  ['Hence $\\boxed{\\pi \\approx 3.24}$.', '\\pi', false, 'approximation'],
  // points as assignments, with or without a box
  ['\\boxed{x=2, y=3, z=-1}', '(2,3,-1)', true, 'assignments'],
  ['\\boxed{x = 2 \\text{ or } y = 3}', '(2,3)', false, 'assignments'],
  [`${R}\n\nTherefore, $(x, y) = (2, -1)$.`, '(2,-1)', true, 'assignments'],
  [`${R}\n\nTherefore, $(x, y) = (-1, 2)$.`, '(2,-1)', false, 'assignments'],
  [`<think>\n${R}\n</think>\n\nThe solution is $(x, y) = (2, -1)$.`, '(2,-1)', true, 'assignments'],
  // a cheating model writing many candidates (never correct); the last of many boxes is the answer
  [`\\boxed{${many.join(', ')}}`, '37', false, 'candidates'],
  [`\\boxed{x = ${many.join(', ')}}`, '37', false, 'candidates'],
  ['\\boxed{1, 2, 3, \\ldots, 100}', '2', false, 'candidates'],
  ['\\boxed{x = 1, 2, 3, \\dots, 100}', '2', false, 'candidates'],
  ['\\boxed{1 \\text{ or } 2 \\text{ or } 3}', '2', false, 'candidates'],
  ['\\boxed{x = 1 = 2 = 3}', '2', false, 'candidates'],
  ['\\boxed{x \\in \\{1, 2, 3\\}}', '2', false, 'candidates'],
  ['\\boxed{A, B}', '\\text{(A)}', false, 'candidates'],
  ['\\boxed{(A) \\text{ or } (C)}', 'C', false, 'candidates'],
  [many.map((k) => `\\boxed{${k}}`).join(' '), '37', false, 'candidates'],
  [many.map((k) => `\\boxed{${k}}`).join(' '), '60', true, 'candidates'],
  [`${R}\n\nChecking $x = 1$ and $x = 3$ fails; the answer is $\\boxed{2}$.`, '2', true, 'candidates'],
];
for (const [response, gold, label, category] of formHand) add(response, gold, label, category, 'hand-written (answer forms)');

const text = rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const stats = {};
for (const r of rows) {
  stats[r.category] ??= { true: 0, false: 0 };
  stats[r.category][r.label] += 1;
}
if (outPath) {
  fs.writeFileSync(outPath, text);
  console.error(`wrote ${rows.length} rows (${text.length} bytes) to ${outPath}`);
  console.error(JSON.stringify(stats));
} else process.stdout.write(text);
