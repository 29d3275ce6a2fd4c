// Equivalent rewrites (label true) and perturbations (label false) of a gold answer.
import { gcd, joinTerms, numericValue, relErr, sig, splitTop, terms } from './corpus-helpers.mjs';

const HAND = {
  'p - q': { pos: ['-q + p', 'p-q'], neg: ['q - p', 'p + q'] },
  '\\cot x': { pos: ['\\frac{\\cos x}{\\sin x}', '\\frac{1}{\\tan x}'], neg: ['\\tan x', '\\cos x'] },
  '(a+5)(b+2)': { pos: ['(b+2)(a+5)', 'ab + 2a + 5b + 10'], neg: ['(a+2)(b+5)', 'ab + 10'] },
  '2k+2': { pos: ['2(k+1)', '2 + 2k'], neg: ['2k+1', '2n+2'] },
  '2k': { pos: ['k \\cdot 2', '2 k'], neg: ['k', 'k^2'] },
  '3R^2': { pos: ['3 R^2', 'R^2 \\cdot 3'], neg: ['3R', '9R^2'] },
  '5r^5': { pos: ['5 r^{5}', 'r^5 \\cdot 5'], neg: ['5r^4', '25r^5'] },
  '\\frac{11+9a}{20}': {
    pos: ['\\frac{9a+11}{20}', '\\frac{11}{20} + \\frac{9a}{20}'],
    neg: ['\\frac{11+9a}{2}', '\\frac{11-9a}{20}'],
  },
  '\\text{Evelyn}': { pos: ['Evelyn', '\\text{evelyn}'], neg: ['\\text{Navin}', 'Bob'] },
  '\\text{Navin}': { pos: ['Navin', '\\textbf{Navin}'], neg: ['\\text{Evelyn}', 'Luna'] },
  '\\text{east}': { pos: ['East', '\\text{East}'], neg: ['west', '\\text{north}'] },
  '\\text{even}': { pos: ['even', '\\text{Even}'], neg: ['odd', '\\text{neither}'] },
  '\\text{ellipse}': { pos: ['Ellipse', '\\text{ellipse}'], neg: ['parabola', '\\text{hyperbola}'] },
  'x=5': { pos: ['5', 'x = 5'], neg: ['x=-5', '6'] },
  'y = 2x + 3': { pos: ['y=3+2x', '2x - y + 3 = 0'], neg: ['y = 2x - 3', 'y = 3x + 2'] },
  'y = -2x': { pos: ['y=-2x', '2x + y = 0'], neg: ['y = 2x', 'y = -\\frac{1}{2}x'] },
  '5x - 7y + 11z + 4 = 0': {
    pos: ['-5x + 7y - 11z - 4 = 0', '5x-7y+11z=-4'],
    neg: ['5x - 7y + 11z - 4 = 0', '5x + 7y + 11z + 4 = 0'],
  },
  'x \\in [-2,7]': { pos: ['[-2,7]', '-2 \\le x \\le 7'], neg: ['(-2,7)', '[-2,7)'] },
  '1 \\pm \\sqrt{19}': {
    pos: ['1+\\sqrt{19}, 1-\\sqrt{19}', '1-\\sqrt{19},1+\\sqrt{19}'],
    neg: ['1+\\sqrt{19}', '1 \\pm \\sqrt{17}'],
  },
  '3 \\pm 2 \\sqrt{2}': {
    pos: ['3+2\\sqrt2, 3-2\\sqrt2', '3 \\pm \\sqrt{8}'],
    neg: ['3+2\\sqrt{2}', '3 \\pm \\sqrt{2}'],
  },
  '\\{1\\pm\\sqrt{5},-2\\}': {
    pos: ['-2, 1+\\sqrt5, 1-\\sqrt5', '\\{1+\\sqrt{5}, 1-\\sqrt{5}, -2\\}'],
    neg: ['1+\\sqrt5, 1-\\sqrt5', '\\{1\\pm\\sqrt{5},2\\}'],
  },
  '(0,9) \\cup (9,36)': { pos: ['(9,36) \\cup (0,9)', '(0, 9)\\cup(9, 36)'], neg: ['(0,36)', '[0,9) \\cup (9,36)'] },
  '(2,12) \\cup (12,102)': {
    pos: ['(12,102) \\cup (2,12)', '(2, 12) \\cup (12, 102)'],
    neg: ['(2,102)', '(2,12] \\cup (12,102)'],
  },
  '(-\\infty, 2) \\cup (3, \\infty)': {
    pos: ['(3,\\infty) \\cup (-\\infty,2)', 'x<2 \\text{ or } x>3'],
    neg: ['(-\\infty, 2] \\cup [3, \\infty)', '(2,3)'],
  },
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

export function simpleFrac(g) {
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
export function variants(g) {
  if (HAND[g]) {
    const cat = /\\text/.test(g)
      ? 'text'
      : /=|\\in/.test(g)
        ? 'equation'
        : /\\pm|\\cup|\\\{/.test(g)
          ? 'set'
          : /i$/.test(g)
            ? 'complex'
            : 'expression';
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
    return {
      cat: 'thousands',
      pos: [String(n), n.toLocaleString('en-US')],
      neg: [String(n + 1), (n + 1000).toLocaleString('en-US')],
    };
  }
  // money
  if ((m = /^\\\$(\d+(?:\.\d+)?)$/.exec(g))) {
    const x = Number(m[1]);
    return {
      cat: 'currency',
      pos: [m[1], `\\$${x.toFixed(2)}`, `${m[1]} dollars`],
      neg: [String(x + 1), `\\$${(x + 0.5).toFixed(2)}`],
    };
  }
  // degrees
  if ((m = /^(\d+)\^\\circ$/.exec(g))) {
    const n = Number(m[1]);
    return {
      cat: 'degrees',
      pos: [String(n), `${n}^{\\circ}`, `${n} degrees`, `${n}\u00b0`],
      neg: [String(n + 1), `${n + 10}^\\circ`, `${180 - n === n ? n + 5 : 180 - n}^\\circ`],
    };
  }
  // units
  if ((m = /^([\d.]+|\\frac\{\d+\}\d)\s*\\(?:text|mbox)\{\s*([a-z ]+)\}(\^2)?$/.exec(g))) {
    const x = m[1];
    const unit = m[2].trim();
    const plusOne = /^\d+(\.\d+)?$/.test(x) ? String(Math.round((Number(x) + 1) * 100) / 100) : `${x}+1`;
    return {
      cat: 'units',
      pos: [x, `${x} ${unit}${m[3] ?? ''}`, `${x}\\text{ ${unit}}`],
      neg: [plusOne, `${plusOne} ${unit}`],
    };
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
    return {
      cat: 'choice',
      pos: [`(${m[1]})`, m[1], `\\textbf{(${m[1]})}`, `${m[1]})`],
      neg: [`(${other})`, other, `\\textbf{(${m[1] === 'E' ? 'D' : 'E'})}`],
    };
  }
  // matrices / vectors
  if (g.startsWith('\\begin{pmatrix}')) {
    const body = g.replace(/^\\begin\{pmatrix\}|\\end\{pmatrix\}$/g, '');
    const rows = body.split('\\\\').map((r) => r.split('&').map((c) => c.trim()));
    const fracify = (c) => c.replace(/^(-?)(\d+)\/(\d+)$/, '$1\\frac{$2}{$3}');
    const build = (env, rs) => `\\begin{${env}} ${rs.map((r) => r.join(' & ')).join(' \\\\ ')} \\end{${env}}`;
    const pos = [
      build(
        'bmatrix',
        rows.map((r) => r.map(fracify)),
      ),
      build('pmatrix', rows),
    ];
    if (rows.every((r) => r.length === 1)) pos.push(`(${rows.map((r) => r[0]).join(', ')})`);
    const flipped = rows.map((r, i) =>
      r.map((c, j) => (i === 0 && j === 0 ? (c.startsWith('-') ? c.slice(1) : `-${c}`) : c)),
    );
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
    if (items[0] !== items[1] && !/\\infty/.test(g))
      neg.push(`${open}${[items[1], items[0], ...items.slice(2)].join(',')}${close}`);
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
      neg: [
        items.slice(0, -1).join(', '),
        [...items.slice(0, -1), String(Number(items.at(-1)) + 1)].join(', '),
        `(${items.join(',')})`,
      ],
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
    return {
      cat: 'expression',
      pos: [joinTerms([...ts].reverse()), joinTerms(ts)],
      neg: [joinTerms(flipped), joinTerms(ts.slice(0, -1))],
    };
  }
  return null;
}
