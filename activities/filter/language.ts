/**
 * Language filter: the answer must be written in the prompt's script, and must not mix in other scripts beyond a
 * threshold (R1-Zero's failure: Chinese inside an English chain of thought). Scripts come from Unicode ranges, counted
 * in words (a run of letters) for alphabetic scripts and in characters for CJK, so one Chinese sentence weighs like
 * one English sentence. Code blocks, inline code and LaTeX commands are ignored; single letters (variables) and
 * one- or two-letter Greek words (π, θ) are symbols, not words. Optionally tinyld identifies the language within a
 * script (English vs Spanish), only when both texts are long enough for it to be reliable.
 */
import type { FilterOptions } from '../../schemas/filter-options';
import type { Candidate, Verdict } from './types';

export const SCRIPTS = [
  'latin',
  'han',
  'kana',
  'hangul',
  'cyrillic',
  'greek',
  'arabic',
  'hebrew',
  'devanagari',
  'thai',
  'other',
] as const;
export type Script = (typeof SCRIPTS)[number];

const NONE = 255;
/** Scripts written without spaces: every character is a unit. */
const CHAR_UNIT = new Set<number>([SCRIPTS.indexOf('han'), SCRIPTS.indexOf('kana'), SCRIPTS.indexOf('thai')]);
/** Shortest run that counts as a word, per script (shorter: a variable name or a math symbol). */
const MIN_RUN: number[] = SCRIPTS.map((s) => (s === 'greek' ? 3 : s === 'latin' || s === 'cyrillic' ? 2 : 1));

let table: Uint8Array | undefined;

function scriptTable(): Uint8Array {
  if (table) return table;
  const t = new Uint8Array(0x10000).fill(NONE);
  const tests: [Script, RegExp][] = [
    ['latin', /\p{Script=Latin}/u],
    ['han', /[\p{Script=Han}\p{Script=Bopomofo}]/u],
    ['kana', /[\p{Script=Hiragana}\p{Script=Katakana}]/u],
    ['hangul', /\p{Script=Hangul}/u],
    ['cyrillic', /\p{Script=Cyrillic}/u],
    ['greek', /\p{Script=Greek}/u],
    ['arabic', /\p{Script=Arabic}/u],
    ['hebrew', /\p{Script=Hebrew}/u],
    ['devanagari', /\p{Script=Devanagari}/u],
    ['thai', /\p{Script=Thai}/u],
  ];
  const letter = /\p{L}/u;
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCharCode(c);
    if (!letter.test(ch)) continue;
    const hit = tests.find(([, re]) => re.test(ch));
    t[c] = SCRIPTS.indexOf(hit ? hit[0] : 'other');
  }
  table = t;
  return t;
}

export interface ScriptProfile {
  /** Units per script. */
  counts: Record<Script, number>;
  total: number;
  /** The script with the most units, or null for a text without words. */
  main: Script | null;
}

/** Text the language check should not look at: code, LaTeX commands, URLs. */
export function stripNonProse(text: string): string {
  if (text.includes('`')) text = text.replace(/```[\s\S]*?(```|$)/g, ' ').replace(/`[^`\n]*`/g, ' ');
  if (text.includes('\\')) text = text.replace(/\\[A-Za-z]+/g, ' ');
  if (text.includes('://')) text = text.replace(/https?:\/\/\S+/g, ' ');
  return text;
}

const IS_CHAR_UNIT = Uint8Array.from(SCRIPTS.map((_, i) => (CHAR_UNIT.has(i) ? 1 : 0)));
const MIN_RUN_BY_SCRIPT = Uint8Array.from(MIN_RUN);
const MARK = /\p{M}/u;

export function scriptProfile(text: string): ScriptProfile {
  const t = scriptTable();
  const counts = new Int32Array(SCRIPTS.length);
  let run = NONE;
  let runLen = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let s: number;
    if (c < 0x80) s = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) ? 0 : NONE;
    else if (c >= 0xd800 && c <= 0xdbff) {
      // Astral: CJK extension ideographs are Han, the rest (emoji, math letters) are symbols.
      const cp = text.codePointAt(i)!;
      s = cp >= 0x20000 && cp <= 0x3134f ? 1 : NONE;
      i++;
    } else s = t[c]!;
    if (s === run && s !== NONE && IS_CHAR_UNIT[s] === 0) {
      runLen++;
      continue;
    }
    // Combining marks inside a word (Devanagari vowel signs) keep the run going.
    if (s === NONE && c >= 0x300 && run !== NONE && MARK.test(text[i]!)) continue;
    if (run !== NONE && runLen >= MIN_RUN_BY_SCRIPT[run]!) counts[run]! += 1;
    run = NONE;
    runLen = 0;
    if (s === NONE) continue;
    if (IS_CHAR_UNIT[s] === 1) counts[s]! += 1;
    else {
      run = s;
      runLen = 1;
    }
  }
  if (run !== NONE && runLen >= MIN_RUN_BY_SCRIPT[run]!) counts[run]! += 1;
  let total = 0;
  let best = -1;
  for (let i = 0; i < counts.length; i++) {
    total += counts[i]!;
    if (counts[i]! > 0 && (best < 0 || counts[i]! > counts[best]!)) best = i;
  }
  const rec = {} as Record<Script, number>;
  for (let i = 0; i < SCRIPTS.length; i++) rec[SCRIPTS[i]!] = counts[i]!;
  return { counts: rec, total, main: best < 0 ? null : SCRIPTS[best]! };
}

/** Han and kana are one writing system for this check (Japanese mixes both). */
function family(s: Script | null): string | null {
  return s === 'kana' ? 'han' : s;
}

type Detect = (text: string) => string;
let tinyld: { detect: Detect } | undefined;

function detector(): Detect {
  // Loaded only when detection is on: tinyld's profiles take a moment and some memory.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  tinyld ??= require('tinyld') as { detect: Detect };
  return tinyld.detect;
}

/** Letters in `text` (tinyld needs enough of them to be reliable). */
function letters(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(/\p{L}/gu)) n++;
  return n;
}

export class LanguageFilter {
  constructor(private readonly opts: FilterOptions['language']) {}

  /** Main script (and language, when identified) of the last checked answer: the card's language statistics. */
  lastScript: Script | null = null;
  lastLanguage: string | null = null;

  check(c: Candidate): Verdict {
    this.lastScript = null;
    this.lastLanguage = null;
    // The answer's script is also the card's language statistic, so it is measured even when the filter is off
    // (then from the first 2,000 characters only: a statistic, not a verdict).
    const text = c.reasoning ? `${c.reasoning}\n${c.summary}` : c.summary;
    const answer = scriptProfile(stripNonProse(this.opts.enabled ? text : text.slice(0, 2000)));
    this.lastScript = answer.main;
    if (!this.opts.enabled || answer.total === 0) return null;
    const prompt = scriptProfile(stripNonProse(c.sample.prompt));
    if (this.opts.sameScriptAsPrompt && prompt.main && answer.main && family(prompt.main) !== family(answer.main)) {
      return {
        reason: 'language_mismatch',
        detail: `prompt is in ${prompt.main} script, the answer in ${answer.main}`,
      };
    }
    let foreign = 0;
    const foreignScripts: string[] = [];
    for (const s of SCRIPTS) {
      const n = answer.counts[s];
      if (!n || family(s) === family(answer.main) || prompt.counts[s] > 0) continue;
      if (s === 'han' && prompt.counts.kana > 0) continue;
      if (s === 'kana' && prompt.counts.han > 0) continue;
      foreign += n;
      foreignScripts.push(`${s} ${n}`);
    }
    const ratio = foreign / answer.total;
    if (foreign > 0 && ratio > this.opts.maxForeignRatio) {
      return {
        reason: 'language_mixing',
        detail: `${(ratio * 100).toFixed(1)}% of ${answer.total} words in other scripts (${foreignScripts.join(', ')}) > ${(this.opts.maxForeignRatio * 100).toFixed(1)}%`,
      };
    }
    if (this.opts.detect || this.opts.expect) {
      const reasoning = stripNonProse(c.reasoning || c.summary);
      if (letters(reasoning) >= this.opts.minDetectChars) {
        const detect = detector();
        const lang = detect(reasoning.slice(0, 4000)) || null;
        this.lastLanguage = lang;
        if (this.opts.expect && lang && lang !== this.opts.expect) {
          return {
            reason: 'language_unexpected',
            detail: `reasoning identified as ${lang}, expected ${this.opts.expect}`,
          };
        }
        const promptText = stripNonProse(c.sample.prompt);
        if (
          !this.opts.expect &&
          lang &&
          this.opts.sameScriptAsPrompt &&
          letters(promptText) >= this.opts.minDetectChars
        ) {
          const plang = detect(promptText.slice(0, 4000));
          if (plang && plang !== lang)
            return { reason: 'language_mismatch', detail: `prompt identified as ${plang}, the reasoning as ${lang}` };
        }
      }
    }
    return null;
  }
}
