// The corpus generator's seeded randomness, synthetic reasoning filler and small string helpers for gold answers.
// One rng for the whole corpus: the rows depend on the order of its draws, so every draw happens in make-corpus.mjs's
// build order (the modules beside it only define things when imported).

function mulberry32(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const rng = mulberry32(20240611);
export const pick = (arr) => arr[Math.floor(rng() * arr.length)];
export const gcd = (a, b) => (b ? gcd(b, a % b) : Math.abs(a));

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
  () =>
    `Let $x$ denote the unknown, so the first condition reads $${1 + Math.floor(rng() * 9)}x + ${Math.floor(rng() * 20)} = ${20 + Math.floor(rng() * 80)}$.`,
  () => `Subtracting the two equations eliminates $y$ and leaves a single linear relation.`,
  () => `Multiplying both sides by $${2 + Math.floor(rng() * 8)}$ clears the denominators.`,
  () => `By symmetry it is enough to consider the case $a \\ge b$.`,
  () =>
    `The discriminant is $${Math.floor(rng() * 50)}^2 - 4 \\cdot ${1 + Math.floor(rng() * 9)} \\cdot ${1 + Math.floor(rng() * 9)}$, which we simplify next.`,
  () => `Expanding the product and collecting like terms gives a quadratic in $t$.`,
  () =>
    `Applying the Pythagorean theorem to the right triangle with legs $${3 + Math.floor(rng() * 9)}$ and $${3 + Math.floor(rng() * 9)}$ gives the hypotenuse.`,
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

export function filler(mentions = []) {
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
export function numericValue(g) {
  let s = g
    .replace(/\\left|\\right/g, '')
    .replace(/\\dfrac/g, '\\frac')
    .replace(/\s+/g, ' ');
  s = s.replace(/\\sqrt\s*\{(\d+)\}/g, 'Math.sqrt($1)');
  for (let k = 0; k < 6; k++)
    s = s
      .replace(/\\frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}/g, '(($1)/($2))')
      .replace(/\\frac\s*(\d)\s*(\d)/g, '(($1)/($2))');
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
export function splitTop(s) {
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
export function terms(s) {
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
export const joinTerms = (ts) => ts.map((t, k) => (k === 0 ? t.replace(/^\+/, '') : ` ${t[0]} ${t.slice(1)}`)).join('');

export const sig = (x, n) => Number(x.toPrecision(n)).toString();
export const relErr = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-300);
