/** Answer extraction: the final answer of a model response. */
import { splitThink } from '../../text/think';
import { findLastBoxed, stripDelims } from './latex';
import type { Extraction } from './types';

const PHRASE_RES: Array<[RegExp, string]> = [
  [/final\s+answer\s*(?:is|:|=)?\s*:?/gi, 'final_answer_phrase'],
  [/\banswer\s+is\s*:?/gi, 'answer_is_phrase'],
  [/\banswer\s*:/gi, 'answer_colon'],
];

function cleanPhraseAnswer(x: string): string {
  x = x.replace(/\*\*|__/g, '').trim();
  const span = /\$\$([\s\S]+?)\$\$|\$([^$]+)\$|\\\(([\s\S]+?)\\\)|\\\[([\s\S]+?)\\\]/.exec(x);
  if (span) return (span[1] ?? span[2] ?? span[3] ?? span[4]).trim();
  const cut = /\.(?:\s|$)/.exec(x);
  if (cut) x = x.slice(0, cut.index);
  return x.replace(/[\s.,;:!]+$/, '').trim();
}

/**
 * "Therefore, $(x, y) = (2, -1)$.": the last line opens with a conclusion word and ends with its only math span, an
 * equation (whether it states a value is for the comparison to decide). A bare number there is not taken: without
 * a box or an answer phrase, only an equation stated as the conclusion is a final answer.
 */
const CONCLUSION_RE =
  /^(?:therefore|thus|hence|so|finally|the solution is|the solutions are)\b([^$]*?)(?:\$([^$]+)\$|\\\((.+?)\\\))[\s.!]*$/i;

function conclusion(text: string): string | null {
  const last = text
    .trimEnd()
    .split('\n')
    .at(-1)!
    .replace(/\*\*|__/g, '')
    .trim();
  const m = CONCLUSION_RE.exec(last);
  if (!m || m[1].includes('\\(')) return null;
  const span = (m[2] ?? m[3]).trim();
  return /=/.test(span) && !/[<>]|\\[lg]eq?(?![A-Za-z])|\\ne/.test(span) ? span : null;
}

function extractFromText(text: string, afterThink: boolean): Extraction | null {
  const b = findLastBoxed(text);
  if (b) return { answer: b.content, method: b.method };
  let best: { end: number; start: number; method: string } | null = null;
  for (const [re, method] of PHRASE_RES) {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) {
      if (!best || m.index > best.start) best = { start: m.index, end: m.index + m[0].length, method };
    }
  }
  if (best) {
    let rest = text.slice(best.end);
    const lines = rest.split('\n');
    rest = lines.find((l) => l.replace(/\*\*|__/g, '').trim() !== '') ?? '';
    const ans = cleanPhraseAnswer(rest);
    if (ans) return { answer: ans, method: best.method };
  }
  const h = /####\s*([^\n]+)\s*$/.exec(text.trimEnd());
  if (h) return { answer: h[1].trim(), method: 'hashes' };
  const c = conclusion(text);
  if (c) return { answer: c, method: 'conclusion' };
  const t = text.trim();
  if (afterThink) {
    if (t && t.length <= 80 && t.split('\n').length <= 2)
      return { answer: cleanPhraseAnswer(stripDelims(t)) || t, method: 'after_think' };
  } else if (t && t.length <= 40 && !t.includes('\n'))
    return { answer: stripDelims(t).replace(/[\s.]+$/, ''), method: 'short_response' };
  return null;
}

/**
 * The final answer of a model response: the last \boxed{…}/\fbox{…} (nested braces handled), else the last
 * "final answer is X" / "The answer is X" / "Answer: X", else "#### X", else an equation concluding the last line
 * ("Therefore, $(x, y) = (2, -1)$."), else the text after </think> when short. The <think>…</think> part is searched
 * only when the final part holds no answer, and then only for a box, an answer phrase or "#### X" (drafts);
 * an unclosed <think> (a truncated generation) has no answer.
 */
export function extractAnswer(response: string): Extraction {
  if (!response || !response.trim()) return { answer: null, method: 'empty' };
  const { reasoning, final } = splitThink(response);
  if (final === null) return { answer: null, method: 'unclosed_think' };
  if (reasoning === null) return extractFromText(final, false) ?? { answer: null, method: 'none' };
  const r = extractFromText(final, true);
  if (r) return r;
  const t = extractFromText(reasoning, false);
  // a short text or a concluding equation inside the reasoning is a draft, not an answer
  if (t && t.method !== 'short_response' && t.method !== 'conclusion')
    return { answer: t.answer, method: `${t.method}_in_think` };
  return { answer: null, method: 'none' };
}
