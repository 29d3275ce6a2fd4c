// Answer forms: thousands separators written as spaces, equations that state the value, approximations after the
// exact value, points written as assignments. Labels follow from the construction: the value written is the gold
// (true) or a different number / a form the policy rejects (false, the reason in `source`).
import { numericValue, pick, splitTop } from './corpus-helpers.mjs';
import { simpleFrac } from './corpus-variants.mjs';

const SEPARATORS = ['\\,', '\\ ', '\\;', '~', '\u202f', '\u2009', '\u00a0'];
const NAMES = ['AB', 'f(2)', 'a_{5}', '[ABC]', 'P(3)', 'x', 'S_{10}'];
// fractions rewritten as answer forms, counted down across calls
let formFracs = 25;

export const formRows = (g) => {
  const out = [];
  const v = numericValue(g.replace(/^\\left|\\right$/g, ''));
  let m;
  if ((m = /^-?\d+$/.exec(g))) {
    const n = Number(g);
    const sep = pick(SEPARATORS);
    // the old product reading: n·001 = n; the number written is n001
    if (n >= 0 && n < 1000)
      out.push([
        'thousands',
        `${n}${sep}001`,
        false,
        'thin-space grouping of another number (its product reading is the gold)',
      ]);
    if (Math.abs(n) >= 1000) {
      out.push([
        'thousands',
        n.toLocaleString('en-US').replace(/,/g, sep),
        true,
        'thousands groups set apart by a space form',
      ]);
      out.push(['thousands', (n + 1000).toLocaleString('en-US').replace(/,/g, sep), false, 'another number, grouped']);
    }
    out.push(
      pick([
        ['relation_value', `${pick(NAMES)} = ${n}`, true, 'a name set to the value'],
        ['relation_value', `${n - 3} + 3 = ${n}`, true, 'a true equation of constants'],
      ]),
    );
    out.push(
      pick([
        ['relation_value', `AB = ${n} = ${n + 1}`, false, 'constant sides that disagree'],
        ['relation_value', `2x = ${n}`, false, 'an equation in the unknown states no value'],
        ['relation_value', `x \\approx ${n}`, false, 'only an approximation'],
        ['relation_value', pick([`x \\neq ${n}`, `x > ${n}`, `x \\ge ${n}`]), false, 'not an equality with the value'],
      ]),
    );
    return out;
  }
  const f = simpleFrac(g);
  if (f) {
    const q = (f.neg ? -1 : 1) * (f.a / f.b);
    if (formFracs-- <= 0) return out;
    out.push(['relation_value', `${pick(NAMES)} = ${g}`, true, 'a name set to the value']);
    out.push(['approximation', `${g} \\approx ${q.toFixed(3)}`, true, 'exact value, then its rounding']);
    out.push(
      pick([
        [
          'approximation',
          `${g} \\approx ${(q + 0.1).toFixed(3)}`,
          false,
          'an approximation that contradicts the exact value',
        ],
        ['approximation', `x \\approx ${q.toFixed(3)}`, false, 'only an approximation'],
      ]),
    );
    return out;
  }
  if (/\\sqrt|\\pi/.test(g) && v !== null && !/[(),]/.test(g)) {
    out.push(['approximation', `${g} \\approx ${v.toFixed(2)}`, true, 'exact value, then its rounding']);
    out.push(
      pick([
        [
          'approximation',
          `${g} \\approx ${(v + Math.max(0.1, Math.abs(v) / 10)).toFixed(2)}`,
          false,
          'an approximation that contradicts the exact value',
        ],
        ['approximation', `x \\approx ${v.toFixed(2)}`, false, 'only an approximation'],
      ]),
    );
    return out;
  }
  // points: a tuple that cannot be an interval (three or more items, or a first item above the second)
  if (
    (m = /^(?:\\left)?\s*\((.*?)(?:\\right)?\s*\)$/.exec(g)) &&
    !/\\infty|\\cup|[a-z]\s*[+(]/.test(g.replace(/\\(?:left|right)/g, ''))
  ) {
    const items = splitTop(m[1]);
    const vals = items.map((x) => numericValue(x));
    const point = items.length >= 3 || (items.length === 2 && vals.every((x) => x !== null) && vals[0] > vals[1]);
    if (!point || items.length > 4) return out;
    const names =
      /\\pi/.test(g) && items.length === 2
        ? ['r', '\\theta']
        : items.length === 4
          ? ['a', 'b', 'c', 'd']
          : ['x', 'y', 'z'];
    const assign = (ns, xs) => xs.map((x, k) => `${ns[k]} = ${x}`).join(', ');
    out.push(['assignments', assign(names, items), true, 'coordinates as assignments, names in order']);
    out.push([
      'assignments',
      `(${names.slice(0, items.length).join(', ')}) = (${items.join(', ')})`,
      true,
      'the point with its names',
    ]);
    if (items[0] !== items[1])
      out.push([
        'assignments',
        assign(names, [items[1], items[0], ...items.slice(2)]),
        false,
        'two coordinates swapped',
      ]);
    out.push([
      'assignments',
      assign([names[1], names[0], ...names.slice(2)], [items[1], items[0], ...items.slice(2)]),
      false,
      'names out of their usual order (policy: fail closed)',
    ]);
  }
  return out;
};
