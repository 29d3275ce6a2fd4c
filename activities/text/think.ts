/**
 * The `<think>…</think>` convention of reasoning models, in one place for the verifiers, the judge and the filter.
 *
 * A response is its reasoning, then its final answer after the LAST `</think>` (drafts inside the reasoning may
 * quote the tag). A `<think>` that is never closed is a generation cut off inside its reasoning: it has no final
 * answer, which every grader must treat as "no answer", never as an answer found in the reasoning. Pure, no I/O.
 */

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';

export interface ThinkSplit {
  /**
   * Text between the first `<think>` and the last `</think>` (anything before that `<think>` dropped); for a cut-off
   * response, the text after `<think>`; null when the response has no think block at all.
   */
  reasoning: string | null;
  /** Text after the last `</think>`; the whole response when it has no think block; null when it is cut off. */
  final: string | null;
}

export function splitThink(response: string): ThinkSplit {
  const close = response.lastIndexOf(THINK_CLOSE);
  const open = response.indexOf(THINK_OPEN);
  if (close < 0) {
    if (open < 0) return { reasoning: null, final: response };
    return { reasoning: response.slice(open + THINK_OPEN.length), final: null };
  }
  const before = response.slice(0, close);
  const start = open >= 0 && open < close ? open + THINK_OPEN.length : 0;
  return { reasoning: before.slice(start), final: response.slice(close + THINK_CLOSE.length) };
}

/** The final part of a response: after the last `</think>`; null when the response stops inside `<think>`. */
export function finalPart(response: string): string | null {
  return splitThink(response).final;
}

/** Reasoning and summary of a formatted answer `<think>\nR\n</think>\nS`, trimmed (reasoning '' without a block). */
export function reasoningAndSummary(text: string): { reasoning: string; summary: string } {
  const s = splitThink(text);
  return { reasoning: (s.reasoning ?? '').trim(), summary: (s.final ?? '').trim() };
}

/** The one template of an assistant turn: reasoning inside the think block, then the answer. */
export function formatThink(reasoning: string, answer: string): string {
  return `${THINK_OPEN}\n${reasoning}\n${THINK_CLOSE}\n${answer}`;
}

/** The text with its tags turned into line breaks (reasoning, then summary), e.g. for near-duplicate detection. */
export function stripThinkTags(text: string): string {
  return text.replace(/<\/?think>/g, '\n');
}

/** The text without its closed think blocks (a reasoning judge's reply: the verdict is outside them). */
export function dropThinkBlocks(text: string): string {
  return text.replace(/<think>[\s\S]*?<\/think>/g, '');
}
