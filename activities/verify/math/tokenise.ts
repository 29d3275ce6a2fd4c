/** LaTeX tokenizer: numbers, letters and words, commands, operators, environments. */
import { matchBrace } from './latex';
import { decimalToRat, mkRat, ratAdd } from './rationals';
import type { Rat } from './types';

type TokKind = 'num' | 'id' | 'word' | 'fn' | 'cmd' | 'op' | 'begin' | 'end';
export interface Tok {
  k: TokKind;
  v: string;
  r?: Rat;
}

export class NotMath extends Error {}

const GREEK = new Set([
  'alpha',
  'beta',
  'gamma',
  'delta',
  'epsilon',
  'varepsilon',
  'zeta',
  'eta',
  'theta',
  'vartheta',
  'iota',
  'kappa',
  'lambda',
  'mu',
  'nu',
  'xi',
  'rho',
  'varrho',
  'sigma',
  'varsigma',
  'tau',
  'upsilon',
  'phi',
  'varphi',
  'chi',
  'psi',
  'omega',
  'Gamma',
  'Delta',
  'Theta',
  'Lambda',
  'Xi',
  'Sigma',
  'Upsilon',
  'Phi',
  'Psi',
  'Omega',
]);
/** LaTeX function name → mathjs function name. */
export const FUNCS: Record<string, string> = {
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  cot: 'cot',
  sec: 'sec',
  csc: 'csc',
  arcsin: 'asin',
  arccos: 'acos',
  arctan: 'atan',
  arccot: 'acot',
  arcsec: 'asec',
  arccsc: 'acsc',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  coth: 'coth',
  ln: 'log',
  log: 'log',
  lg: 'log10',
  exp: 'exp',
};
export const INVERSE: Record<string, string> = {
  sin: 'asin',
  cos: 'acos',
  tan: 'atan',
  cot: 'acot',
  sec: 'asec',
  csc: 'acsc',
};
const CMD_OPS: Record<string, string> = {
  cdot: '*',
  times: '*',
  ast: '*',
  div: '/',
  pm: '±',
  mp: '∓',
  cup: 'cup',
  le: '<=',
  leq: '<=',
  leqslant: '<=',
  ge: '>=',
  geq: '>=',
  geqslant: '>=',
  lt: '<',
  gt: '>',
  ne: '!=',
  neq: '!=',
  in: 'in',
  approx: '~',
  simeq: '~',
  lvert: '|',
  rvert: '|',
  vert: '|',
  mid: '|',
  lbrace: '\\{',
  rbrace: '\\}',
  langle: '(',
  rangle: ')',
  colon: ':',
  lor: 'or',
};
const CMDS = new Set([
  'frac',
  'sqrt',
  'binom',
  'pi',
  'infty',
  'emptyset',
  'varnothing',
  'lfloor',
  'rfloor',
  'lceil',
  'rceil',
]);
const SKIP_CMDS = new Set([
  'left',
  'right',
  'big',
  'Big',
  'bigg',
  'Bigg',
  'bigl',
  'bigr',
  'Bigl',
  'Bigr',
  'displaystyle',
  'quad',
  'qquad',
  'circ',
  'degree',
  'limits',
  'nolimits',
  'textstyle',
]);
const SHORT_WORDS = new Set([
  'no',
  'on',
  'of',
  'to',
  'is',
  'it',
  'an',
  'as',
  'at',
  'by',
  'if',
  'up',
  'us',
  'we',
  'be',
  'do',
  'go',
  'so',
  'or',
  'and',
]);
const LETTER_WORDS: Record<string, Tok> = {
  pi: { k: 'cmd', v: 'pi' },
  inf: { k: 'cmd', v: 'infty' },
  infty: { k: 'cmd', v: 'infty' },
  infinity: { k: 'cmd', v: 'infty' },
  sqrt: { k: 'cmd', v: 'sqrt' },
};
const SIMPLE_OPS = new Set([
  '+',
  '-',
  '*',
  '/',
  '^',
  '_',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  '|',
  ',',
  '=',
  "'",
  '&',
  ';',
  ':',
]);

const NUM_RE = /(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)(?![A-Za-z^\d]))?/y;
const REPEAT_RE = /(\d*)\.(\d*)\\overline\s*\{(\d+)\}/y;
const LETTERS_RE = /[A-Za-z]+/y;

function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function tokenize(s: string): Tok[] | null {
  const out: Tok[] = [];
  const n = s.length;
  let i = 0;
  while (i < n) {
    const ch = s[i];
    const c = s.charCodeAt(i);
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      i++;
      continue;
    }
    if (isDigitCode(c) || (ch === '.' && i + 1 < n && isDigitCode(s.charCodeAt(i + 1)))) {
      REPEAT_RE.lastIndex = i;
      const rm = REPEAT_RE.exec(s);
      if (rm) {
        const [, ip, nr, rep] = rm;
        const k = BigInt(nr.length);
        const base = decimalToRat(`${ip || '0'}.${nr}`)!;
        const r = ratAdd(base, mkRat(BigInt(rep), 10n ** k * (10n ** BigInt(rep.length) - 1n))!)!;
        out.push({ k: 'num', v: rm[0], r });
        i = REPEAT_RE.lastIndex;
        continue;
      }
      NUM_RE.lastIndex = i;
      const m = NUM_RE.exec(s)!;
      out.push({ k: 'num', v: m[0] });
      i = NUM_RE.lastIndex;
      continue;
    }
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
      LETTERS_RE.lastIndex = i;
      const run = LETTERS_RE.exec(s)![0];
      i += run.length;
      if (LETTER_WORDS[run]) out.push(LETTER_WORDS[run]);
      else if (FUNCS[run]) out.push({ k: 'fn', v: run });
      else if (run.length >= 3 || SHORT_WORDS.has(run.toLowerCase())) out.push({ k: 'word', v: run });
      else for (const l of run) out.push({ k: 'id', v: l });
      continue;
    }
    if (ch === '\\') {
      const nx = s[i + 1];
      if (nx === undefined) return null;
      if (!/[A-Za-z]/.test(nx)) {
        i += 2;
        if (nx === '{') out.push({ k: 'op', v: '\\{' });
        else if (nx === '}') out.push({ k: 'op', v: '\\}' });
        else if (nx === '\\') out.push({ k: 'op', v: '\\\\' });
        else if (nx === '|') out.push({ k: 'op', v: '|' });
        else if (!' ,;:!%$'.includes(nx)) return null;
        continue;
      }
      LETTERS_RE.lastIndex = i + 1;
      const name = LETTERS_RE.exec(s)![0];
      i += 1 + name.length;
      if (SKIP_CMDS.has(name)) continue;
      if (CMD_OPS[name]) out.push({ k: 'op', v: CMD_OPS[name] });
      else if (CMDS.has(name)) out.push({ k: 'cmd', v: name === 'varnothing' ? 'emptyset' : name });
      else if (FUNCS[name]) out.push({ k: 'fn', v: name });
      else if (GREEK.has(name)) out.push({ k: 'id', v: name });
      else if (name === 'begin' || name === 'end') {
        while (s[i] === ' ') i++;
        if (s[i] !== '{') return null;
        const e = matchBrace(s, i);
        if (e < 0) return null;
        const env = s.slice(i + 1, e).trim();
        i = e + 1;
        if (name === 'begin' && env === 'array') {
          while (s[i] === ' ') i++;
          if (s[i] === '{') {
            const e2 = matchBrace(s, i);
            if (e2 < 0) return null;
            i = e2 + 1;
          }
        }
        out.push({ k: name, v: env.replace(/\*$/, '') });
      } else if (name === 'text' || name === 'operatorname' || name === 'mathbb') {
        while (s[i] === ' ') i++;
        if (s[i] !== '{') return null;
        const e = matchBrace(s, i);
        if (e < 0) return null;
        const content = s.slice(i + 1, e).trim();
        i = e + 1;
        if (!content) continue;
        if (name === 'operatorname' && FUNCS[content]) out.push({ k: 'fn', v: content });
        else if (/^[A-Za-z .'-]+$/.test(content)) out.push({ k: 'word', v: content });
        else {
          const inner = tokenize(content);
          if (!inner) return null;
          out.push(...inner);
        }
      } else return null; // unknown command: not comparable
      continue;
    }
    if (ch === '<' || ch === '>' || ch === '!') {
      if (s[i + 1] === '=') {
        out.push({ k: 'op', v: ch === '!' ? '!=' : ch + '=' });
        i += 2;
        continue;
      }
      out.push({ k: 'op', v: ch });
      i++;
      continue;
    }
    if (SIMPLE_OPS.has(ch)) {
      out.push({ k: 'op', v: ch === ';' ? ',' : ch });
      i++;
      continue;
    }
    return null;
  }
  return out;
}
