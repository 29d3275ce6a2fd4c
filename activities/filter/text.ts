/**
 * Text primitives shared by the filters: one tokenizer (words, with CJK characters as single tokens), 32-bit hashes,
 * and the split of a formatted answer into reasoning and summary. Hot paths work on char codes and typed arrays:
 * no substrings, no regex per token, so 200,000 samples tokenize in a second or two.
 */

/** Math.imul, bound once: under jest's sandboxed globals a `Math.` lookup in a hot loop is ~50× slower. */
const imul = Math.imul;

/** Character classes: 0 separator, 1 word character (letter, digit, mark), 2 ideograph/kana/Thai (one token each). */
const SEP = 0;
const WORD = 1;
const IDEO = 2;

let classTable: Uint8Array | undefined;

/** Built once on first use (64 Ki entries; a few ms). */
function classes(): Uint8Array {
  if (classTable) return classTable;
  const t = new Uint8Array(0x10000);
  const word = /[\p{L}\p{N}\p{M}]/u;
  const ideo =
    /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue; // surrogates: handled in the scanner
    const ch = String.fromCharCode(c);
    if (ideo.test(ch)) t[c] = IDEO;
    else if (word.test(ch)) t[c] = WORD;
  }
  classTable = t;
  return t;
}

/** Characters kept as one-character tokens when `operators` is set (math must not collapse "3+4" and "3-4"). */
const OPERATORS = new Set('+-*/=^<>×÷%±≤≥≠√∑∫!|'.split('').map((c) => c.charCodeAt(0)));

export interface TokenizeOptions {
  /** Keep math operators as tokens (decontamination: "47+85" ≠ "47-85"). */
  operators?: boolean;
}

/** murmur3 32-bit finaliser. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Token hashes of a text: lower-cased maximal runs of letters/digits/marks, each CJK (Han, kana), Thai-family
 * character a token of its own; optionally math operators as tokens. Returns the number of tokens written into
 * `out` (grown as needed; pass the returned buffer back in to reuse it).
 */
export class Tokenizer {
  hashes: Int32Array = new Int32Array(1024);
  /** Start/end offsets (into the lower-cased text) of each token, only when `spans` is requested. */
  starts: Int32Array = new Int32Array(0);
  ends: Int32Array = new Int32Array(0);
  length = 0;

  constructor(private readonly opts: TokenizeOptions = {}) {}

  /** Tokenizes `text`; hashes land in `this.hashes[0..length)`. With `spans`, offsets into `lower` too. */
  run(text: string, spans = false): this {
    const t = classes();
    const lower = text.toLowerCase();
    this.lastLower = lower;
    this.lastText = text;
    const ops = this.opts.operators;
    let n = 0;
    let h = 0x811c9dc5;
    let inWord = false;
    let start = 0;
    const push = (hash: number, s: number, e: number) => {
      if (n === this.hashes.length) this.hashes = grow(this.hashes);
      this.hashes[n] = fmix32(hash) | 0;
      if (spans) {
        if (n >= this.starts.length) {
          this.starts = grow(this.starts, Math.max(1024, this.hashes.length));
          this.ends = grow(this.ends, this.starts.length);
        }
        this.starts[n] = s;
        this.ends[n] = e;
      }
      n++;
    };
    const len = lower.length;
    for (let i = 0; i < len; i++) {
      let c = lower.charCodeAt(i);
      let cls: number;
      let width = 1;
      if (c < 0x80) {
        cls = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) ? WORD : SEP;
      } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
        // Astral plane: CJK extensions are ideographs, the rest (emoji, math alphanumerics) counts as separators.
        const cp = lower.codePointAt(i)!;
        width = 2;
        cls = cp >= 0x20000 && cp <= 0x3134f ? IDEO : SEP;
        c = cp;
      } else {
        cls = t[c]!;
      }
      if (cls === WORD) {
        if (!inWord) {
          inWord = true;
          start = i;
          h = 0x811c9dc5;
        }
        h = imul(h ^ c, 0x01000193);
        continue;
      }
      if (inWord) {
        push(h, start, i);
        inWord = false;
      }
      if (cls === IDEO) {
        push(imul(0x811c9dc5 ^ c, 0x01000193) ^ 0x5bd1e995, i, i + width);
      } else if (ops && OPERATORS.has(c)) {
        push(imul(0x9747b28c ^ c, 0x01000193), i, i + 1);
      }
      if (width === 2) i++;
    }
    if (inWord) push(h, start, len);
    this.length = n;
    return this;
  }

  /** The lower-cased text of the last `run` (token spans index into it), and the text itself. */
  lastLower = '';
  lastText = '';

  /** The token strings of the last `run(text, true)`, for reports and for confirming rare hash hits. */
  tokenStrings(from = 0, to = this.length): string[] {
    const out: string[] = [];
    for (let i = from; i < to; i++) out.push(this.lastLower.slice(this.starts[i], this.ends[i]));
    return out;
  }
}

function grow<T extends Int32Array>(a: T, min = 0): T {
  const b = new Int32Array(Math.max(a.length * 2, min, 16)) as T;
  b.set(a);
  return b;
}

/** Hash of tokens[i..i+n) (order-sensitive). */
export function ngramHash(tokens: Int32Array, i: number, n: number, seed = 0x2545f491): number {
  let h = seed;
  for (let j = 0; j < n; j++) {
    h = imul(h ^ tokens[i + j]!, 0x9e3779b1);
    h ^= h >>> 15;
  }
  return fmix32(h) | 0;
}

/** Two independent 32-bit hashes of a string, combined into a 53-bit safe integer (Set/Map key). */
export function hash53(s: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = imul(h1 ^ c, 2654435761);
    h2 = imul(h2 ^ c, 1597334677);
  }
  h1 = imul(h1 ^ (h1 >>> 16), 2246822507) ^ imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = imul(h2 ^ (h2 >>> 16), 2246822507) ^ imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Lower-cased, whitespace-collapsed, trimmed: the key of exact deduplication. */
export function normaliseForExact(s: string): string {
  return s.toLowerCase().replace(/\s+/g, ' ').trim();
}

function isSpace(c: number): boolean {
  if (c < 0x80) return c === 32 || (c >= 9 && c <= 13);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/**
 * Two 32-bit hashes of `normaliseForExact(a) + "\u0000" + normaliseForExact(b)`, computed in one pass without
 * building the normalised strings (exact dedup of 200,000 answers: no regex, no copies). Written into `out`.
 */
export function exactHash(a: string, b: string, out: Int32Array): void {
  let h1 = 0x9747b28c;
  let h2 = 0x1b873593;
  for (let part = 0; part < 2; part++) {
    if (part === 1) {
      // the separator between prompt and answer
      h1 = imul(h1, 0x01000193);
      h2 = imul(h2, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    const s = (part === 0 ? a : b).toLowerCase();
    let pendingSpace = false;
    let started = false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (isSpace(c)) {
        pendingSpace = started;
        continue;
      }
      if (pendingSpace) {
        pendingSpace = false;
        h1 = imul(h1 ^ 32, 0x01000193);
        h2 = imul(h2 ^ 32, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
      started = true;
      h1 = imul(h1 ^ c, 0x01000193);
      h2 = imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
  }
  out[0] = fmix32(h1 ^ imul(h2, 0x27d4eb2d));
  out[1] = fmix32(h2 ^ imul(h1, 0x165667b1));
}
