/**
 * Format: every assistant turn in one template, `<think>\nreasoning\n</think>\nsummary`, the summary being the concise
 * answer. Repairs what can be repaired (DeepSeek-style `reasoning_content` → think tags; a completion that starts
 * inside the reasoning because the chat template opened the tag; end-of-sequence tokens the server left in) and drops
 * the rest with a reason.
 */
import type { SampleRow } from '../../schemas/artifact';
import type { FilterOptions } from '../../schemas/filter-options';
import { formatThink, reasoningAndSummary } from '../text/think';
import type { Candidate, Verdict } from './types';

export type Formatted = { ok: true; text: string } | { ok: false; reason: string; detail: string };

/** End-of-sequence markers some servers leave at the end of the text. */
const TRAILING_SPECIAL =
  /(?:\s*(?:<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|<\|end\|>|<｜end▁of▁sentence｜>|<\/s>))+\s*$/;

export function stripTrailingSpecial(s: string): string {
  // Every marker ends in '>': skip the regex (which scans the whole text) when the text does not.
  const t = s.trimEnd();
  return t.endsWith('>') ? t.replace(TRAILING_SPECIAL, '') : s;
}

/** Puts a sample into one template: reasoning inside <think>…</think>, then the answer summary. */
export function formatAssistant(sample: Pick<SampleRow, 'content' | 'reasoning'>, requireThink: boolean): Formatted {
  const content = stripTrailingSpecial(sample.content ?? '').trim();
  const reasoning = sample.reasoning?.trim();
  const opens = (content.match(/<think>/g) ?? []).length;
  const closes = (content.match(/<\/think>/g) ?? []).length;
  if (reasoning && opens === 0 && closes === 0) {
    // DeepSeek-style APIs return the chain of thought apart from the answer: repair into the inline template.
    return content
      ? { ok: true, text: formatThink(reasoning, content) }
      : { ok: false, reason: 'empty_answer', detail: 'reasoning without a final answer' };
  }
  if (opens === 0 && closes === 1) {
    // Some chat templates put the opening tag in the prompt, so the completion starts inside the reasoning.
    return formatAssistant({ content: `<think>${content}` }, requireThink);
  }
  if (opens > 1 || closes > 1 || opens !== closes)
    return { ok: false, reason: 'malformed_think', detail: `${opens} <think> and ${closes} </think> tags` };
  if (opens === 0) {
    if (requireThink) return { ok: false, reason: 'no_think', detail: 'no <think> reasoning block' };
    return content ? { ok: true, text: content } : { ok: false, reason: 'empty', detail: 'empty content' };
  }
  const m = /^([\s\S]*?)<think>([\s\S]*?)<\/think>([\s\S]*)$/.exec(content)!;
  const [, before, inner, after] = m as unknown as [string, string, string, string];
  if (before.trim()) return { ok: false, reason: 'malformed_think', detail: 'text before <think>' };
  if (!inner.trim()) return { ok: false, reason: 'empty_reasoning', detail: 'empty <think> block' };
  if (!after.trim()) return { ok: false, reason: 'empty_answer', detail: 'nothing after </think>' };
  return { ok: true, text: formatThink(inner.trim(), after.trim()) };
}

/** Whether the summary states the final answer: a \boxed{…}, or the gold answer's text. */
export function statesFinalAnswer(summary: string, gold: string | undefined): boolean {
  if (summary.includes('\\boxed{')) return true;
  const g = (gold ?? '').trim();
  return g.length > 0 && summary.includes(g);
}

export class FormatStep {
  constructor(private readonly opts: { requireThink: boolean; format: FilterOptions['format'] }) {}

  /** The formatted candidate, or the drop verdict. */
  apply(
    sample: SampleRow,
  ): { candidate: Candidate; verdict: null } | { candidate: null; verdict: NonNullable<Verdict> } {
    const f = formatAssistant(sample, this.opts.requireThink);
    if (!f.ok) return { candidate: null, verdict: { reason: f.reason, detail: f.detail } };
    const { reasoning, summary } = reasoningAndSummary(f.text);
    if (summary.length > this.opts.format.maxSummaryChars) {
      return {
        candidate: null,
        verdict: {
          reason: 'summary_too_long',
          detail: `${summary.length} chars after </think> > ${this.opts.format.maxSummaryChars}`,
        },
      };
    }
    if (this.opts.format.requireFinalAnswer && !statesFinalAnswer(summary, sample.answer)) {
      return {
        candidate: null,
        verdict: { reason: 'no_final_answer', detail: 'the summary has neither \\boxed{…} nor the answer' },
      };
    }
    return { candidate: { sample, text: f.text, reasoning, summary }, verdict: null };
  }
}
