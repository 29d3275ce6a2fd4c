/**
 * Optional limits on code blocks (fenced ``` blocks) and links (http(s) URLs, markdown links) in an answer: a
 * reasoning dataset for math rarely wants either, a code dataset may want a cap.
 */
import type { FilterOptions } from '../../schemas/filter-options';
import type { Candidate, Verdict } from './types';

export function countCodeBlocks(text: string): number {
  const fences = text.match(/^[ \t]*```/gm)?.length ?? 0;
  return Math.ceil(fences / 2);
}

export function countLinks(text: string): number {
  const urls = text.match(/\bhttps?:\/\/[^\s)\]>"']+/g)?.length ?? 0;
  const relative = text.match(/\]\((?!https?:)[^)\s]+\)/g)?.length ?? 0; // [text](./path)
  return urls + relative;
}

export class LimitsFilter {
  constructor(private readonly opts: FilterOptions['limits']) {}

  get enabled(): boolean {
    return this.opts.maxCodeBlocks !== undefined || this.opts.maxLinks !== undefined;
  }

  check(c: Candidate): Verdict {
    if (this.opts.maxCodeBlocks !== undefined) {
      const n = countCodeBlocks(c.text);
      if (n > this.opts.maxCodeBlocks)
        return { reason: 'too_many_code_blocks', detail: `${n} code blocks > ${this.opts.maxCodeBlocks}` };
    }
    if (this.opts.maxLinks !== undefined) {
      const n = countLinks(c.text);
      if (n > this.opts.maxLinks) return { reason: 'too_many_links', detail: `${n} links > ${this.opts.maxLinks}` };
    }
    return null;
  }
}
