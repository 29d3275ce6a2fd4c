/** Small LaTeX text helpers shared by normalisation, tokenising and extraction: braces, \boxed, math delimiters. */

const DELIM_RES: RegExp[] = [/^\$\$([\s\S]*)\$\$$/, /^\$([\s\S]*)\$$/, /^\\\(([\s\S]*)\\\)$/, /^\\\[([\s\S]*)\\\]$/];

/** Drops wrapping math delimiters: $…$, $$…$$, \(…\), \[…\] (nested up to four deep). */
export function stripDelims(s: string): string {
  for (let k = 0; k < 4; k++) {
    let changed = false;
    for (const re of DELIM_RES) {
      const m = re.exec(s);
      if (m) {
        s = m[1].trim();
        changed = true;
      }
    }
    if (!changed) break;
  }
  return s;
}

/** Index of the brace closing the one at `j` (escaped \{ \} and \\ skipped), or -1. */
export function matchBrace(s: string, j: number): number {
  let depth = 0;
  for (let k = j; k < s.length; k++) {
    const ch = s[k];
    if (ch === '\\') {
      k++;
      continue;
    }
    if (ch === '{') depth++;
    else if (ch === '}') {
      depth--;
      if (depth === 0) return k;
    }
  }
  return -1;
}

/** Content of the last non-empty \boxed{…} or \fbox{…} (nested braces handled; also `\boxed 5`). */
export function findLastBoxed(text: string): { content: string; method: string } | null {
  let from = text.length;
  while (from > 0) {
    const b = text.lastIndexOf('\\boxed', from - 1);
    const f = text.lastIndexOf('\\fbox', from - 1);
    const i = Math.max(b, f);
    if (i < 0) return null;
    const isBoxed = i === b;
    const method = isBoxed ? 'boxed' : 'fbox';
    let j = i + (isBoxed ? 6 : 5);
    while (text[j] === ' ') j++;
    if (text[j] === '{') {
      const e = matchBrace(text, j);
      if (e > 0) {
        const c = text.slice(j + 1, e).trim();
        if (c) return { content: c, method };
      }
    } else if (isBoxed && j > i + 6) {
      // "\boxed 5"
      const m = /^[^\s$]+/.exec(text.slice(j));
      if (m) return { content: m[0].replace(/[.,]$/, ''), method };
    }
    from = i;
  }
  return null;
}
