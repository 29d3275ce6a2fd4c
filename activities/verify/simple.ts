/**
 * Verifiers for answers with no mathematics in them: exact match, multiple choice, regular expression.
 * Pure functions, no I/O. All look only at the final answer (after </think>); an unclosed <think> (a truncated
 * generation) has no answer. All fail closed: a gold that cannot be used gives 'unparseable_gold', never 'correct'.
 */
import * as vm from 'node:vm';
import { finalPart } from '../text/think';
import { extractAnswer } from './math';

export type SimpleVerdict = 'correct' | 'incorrect' | 'no_answer' | 'unparseable_gold';

export interface SimpleVerification {
  verdict: SimpleVerdict;
  extracted: string | null;
  reason: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Exact match
// ---------------------------------------------------------------------------------------------------------------

export interface ExactOptions {
  ignoreCase?: boolean;
}

function normExact(s: string, o: ExactOptions): string {
  let t = s.normalize('NFC').trim();
  for (let k = 0; k < 3; k++) {
    t = t
      .replace(/\s*[.!]$/, '')
      .replace(/^\*\*([\s\S]*)\*\*$/, '$1')
      .replace(/^`([^`]*)`$/, '$1')
      .replace(/^\$([^$]*)\$$/, '$1')
      .replace(/^\\text\{([^{}]*)\}$/, '$1')
      .replace(/^"([^"]*)"$/, '$1')
      .trim();
  }
  t = t.replace(/\s+/g, ' ').replace(/[.!]$/, '').trim();
  return o.ignoreCase ? t.toLowerCase() : t;
}

/**
 * Exact match: the final answer — the last \boxed{…} or "The (final) answer is …" when there is one, else the whole
 * final part — equals the gold after trimming, whitespace runs collapsed, a trailing period and wrapping
 * **bold**, `code`, $…$, \text{…} or quotes dropped. Case-sensitive unless `ignoreCase`.
 */
export function verifyExact(response: string, gold: string, o: ExactOptions = {}): SimpleVerification {
  const g = normExact(gold ?? '', o);
  if (!g) return { verdict: 'unparseable_gold', extracted: null, reason: 'gold answer is empty' };
  const fin = finalPart(response ?? '');
  if (fin === null || !fin.trim())
    return {
      verdict: 'no_answer',
      extracted: null,
      reason: fin === null ? 'response stops inside <think>' : 'empty final answer',
    };
  const ex = extractAnswer(fin);
  const marked = ex.answer !== null && /boxed|fbox|phrase|colon/.test(ex.method);
  const extracted = marked ? ex.answer! : fin.trim();
  const p = normExact(extracted, o);
  if (p === g)
    return { verdict: 'correct', extracted, reason: `exact match (${marked ? ex.method : 'whole final answer'})` };
  // a whole final answer that is only the gold on its last line ("…reasoning…\n\nParis")
  if (!marked) {
    const last =
      fin
        .trim()
        .split('\n')
        .filter((l) => l.trim())
        .at(-1) ?? '';
    if (normExact(last, o) === g)
      return { verdict: 'correct', extracted: last.trim(), reason: 'exact match (last line)' };
  }
  return {
    verdict: 'incorrect',
    extracted,
    reason: `differs from the gold (${marked ? ex.method : 'whole final answer'})`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Multiple choice
// ---------------------------------------------------------------------------------------------------------------

const LETTERS = 'A-J';

/** The letter of a gold answer: "B", "(B)", "B)", "B.", "\text{(B)}", "\textbf{(B)} 12", "Answer: B". Null otherwise. */
export function choiceLetter(gold: string): string | null {
  let t = (gold ?? '').trim();
  t = t
    .replace(/\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}/g, '$1')
    .replace(/\$/g, '')
    .replace(/\*\*/g, '')
    .trim();
  t = t.replace(/^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is|:)?\s*/i, '');
  const m = new RegExp(`^\\(?([${LETTERS}])\\)?(?:[.:)]|\\s|$)`).exec(t);
  if (!m) return null;
  // "B" must be the whole gold or followed by its option text, not the start of a word ("Bob")
  if (t.length > 1 && /^[A-J][a-z]/.test(t)) return null;
  return m[1];
}

const PHRASE =
  /(?:final\s+answer|correct\s+(?:answer|option|choice)|answer|option|choice)\s*(?:is|would\s+be|should\s+be|must\s+be|=|:)\s*:?\s*/gi;

function lettersIn(seg: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`\\(([${LETTERS}a-j])\\)|\\b([${LETTERS}])\\b(?![\\w'’])`, 'g');
  let m: RegExpExecArray | null;
  while ((m = re.exec(seg))) out.push((m[1] ?? m[2]).toUpperCase());
  return out;
}

function stripMarkup(s: string): string {
  return s
    .replace(/\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}/g, '$1')
    .replace(/\*\*|__|\$|\\\(|\\\)|\\\[|\\\]/g, '')
    .trim();
}

/** The letter a response picks, with how it was found; `ambiguous` when the final statement names two letters. */
export function extractChoice(response: string): { letter: string | null; method: string } {
  const fin = finalPart(response ?? '');
  if (fin === null) return { letter: null, method: 'unclosed_think' };
  if (!fin.trim()) return { letter: null, method: 'empty' };
  const ex = extractAnswer(fin);
  if (ex.answer !== null && /boxed|fbox/.test(ex.method)) {
    const ls = [...new Set(lettersIn(stripMarkup(ex.answer)))];
    const first = new RegExp(`^\\(?([${LETTERS}])\\)?(?:[.:)\\s]|$)`).exec(stripMarkup(ex.answer));
    if (first) return { letter: first[1], method: ex.method };
    if (ls.length === 1) return { letter: ls[0], method: ex.method };
    if (ls.length > 1) return { letter: null, method: 'ambiguous' };
  }
  // the last "answer is (B)" / "Answer: B" / "correct option is B"
  let last: RegExpExecArray | null = null;
  PHRASE.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = PHRASE.exec(fin))) last = m;
  if (last) {
    const seg = stripMarkup(fin.slice(last.index + last[0].length).split('\n')[0]).split(/(?<=[.;])\s/)[0];
    const head = new RegExp(`^\\(?([${LETTERS}])\\)?(?:[.:),;\\s]|$)`).exec(seg) ?? /^\(([a-j])\)/.exec(seg);
    const ls = [...new Set(lettersIn(seg))];
    if (head && (ls.length <= 1 || !/\b(?:or|and)\b|\//.test(seg)))
      return { letter: head[1].toUpperCase(), method: 'answer_phrase' };
    if (ls.length === 1) return { letter: ls[0], method: 'answer_phrase' };
    if (ls.length > 1) return { letter: null, method: 'ambiguous' };
  }
  // a final answer that starts with the letter: "(B)", "B)", "B. 12", "**B**", or is only the letter
  const t = stripMarkup(fin)
    .split('\n')
    .filter((l) => l.trim());
  for (const line of [t[0], t.at(-1)]) {
    if (!line) continue;
    const s = line.trim();
    const h = new RegExp(`^\\(([${LETTERS}a-j])\\)|^([${LETTERS}])(?:[.:)]|\\s*$)`).exec(s);
    if (h)
      return { letter: (h[1] ?? h[2]).toUpperCase(), method: line === t[0] ? 'leading_letter' : 'last_line_letter' };
  }
  return { letter: null, method: 'none' };
}

/** Multiple choice: the response's letter equals the gold's letter. */
export function verifyChoice(response: string, gold: string): SimpleVerification {
  const g = choiceLetter(gold);
  if (!g)
    return {
      verdict: 'unparseable_gold',
      extracted: null,
      reason: `gold is not an option letter A–J: ${JSON.stringify(gold)}`,
    };
  const ex = extractChoice(response);
  if (!ex.letter)
    return {
      verdict: 'no_answer',
      extracted: null,
      reason:
        ex.method === 'ambiguous'
          ? 'the final answer names more than one option'
          : `no option letter found (${ex.method})`,
    };
  const ok = ex.letter === g;
  return {
    verdict: ok ? 'correct' : 'incorrect',
    extracted: ex.letter,
    reason: `${ex.method}: ${ex.letter} ${ok ? '=' : '≠'} ${g}`,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Regular expression
// ---------------------------------------------------------------------------------------------------------------

const regexCache = new Map<string, RegExp | string>();

/** "/pattern/flags" or a bare pattern; an error string when it does not compile. */
export function compileGoldRegex(gold: string): RegExp | string {
  let r = regexCache.get(gold);
  if (r !== undefined) return r;
  const m = /^\/([\s\S]+)\/([dgimsuvy]*)$/.exec(gold.trim());
  try {
    r = m ? new RegExp(m[1], m[2].replace(/[gy]/g, '')) : new RegExp(gold);
  } catch (e) {
    r = (e as Error).message;
  }
  if (regexCache.size > 10000) regexCache.clear();
  regexCache.set(gold, r);
  return r;
}

const regexContext = vm.createContext({});
const regexScript = new vm.Script('__re.exec(__s)');

export interface RegexOptions {
  /** Milliseconds a match may take (a pathological pattern on a long response cannot hang the worker). */
  timeoutMs?: number;
}

/**
 * Regex: the gold is a pattern ("/…/flags" or bare) searched in the final answer part; anchor it (^…$) to demand a
 * whole-answer match. The match runs with a time limit.
 */
export function verifyRegex(response: string, gold: string, o: RegexOptions = {}): SimpleVerification {
  if (!gold || !gold.trim()) return { verdict: 'unparseable_gold', extracted: null, reason: 'gold pattern is empty' };
  const re = compileGoldRegex(gold);
  if (typeof re === 'string')
    return { verdict: 'unparseable_gold', extracted: null, reason: `gold pattern does not compile: ${re}` };
  const fin = finalPart(response ?? '');
  if (fin === null || !fin.trim())
    return {
      verdict: 'no_answer',
      extracted: null,
      reason: fin === null ? 'response stops inside <think>' : 'empty final answer',
    };
  const text = fin.trim();
  let m: RegExpExecArray | null;
  try {
    regexContext.__re = re;
    regexContext.__s = text;
    m = regexScript.runInContext(regexContext, { timeout: o.timeoutMs ?? 1000 }) as RegExpExecArray | null;
  } catch (e) {
    return { verdict: 'incorrect', extracted: null, reason: `pattern match stopped: ${(e as Error).message}` };
  } finally {
    regexContext.__re = undefined;
    regexContext.__s = undefined;
  }
  if (!m) return { verdict: 'incorrect', extracted: null, reason: `final answer does not match ${re}` };
  return { verdict: 'correct', extracted: m[0], reason: `final answer matches ${re}` };
}
