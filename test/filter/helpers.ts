import type { SampleRow } from '../../schemas/artifact';
import type { Candidate } from '../../activities/filter/types';
import { formatThink, reasoningAndSummary } from '../../activities/text/think';

/** A SampleRow with sensible provenance; override what a case is about. */
export function sample(over: Partial<SampleRow> = {}): SampleRow {
  return {
    id: 'p1#0@h',
    promptId: 'p1',
    sampleIndex: 0,
    configHash: 'h',
    prompt: 'Compute 12+30.',
    answer: '42',
    content: '<think>\n2+0=2, 1+3=4.\n</think>\nThe answer is \\boxed{42}.',
    finishReason: 'stop',
    usage: { promptTokens: 10, completionTokens: 20 },
    teacher: { model: 'teacher-x', systemFingerprint: 'fp1' },
    sampling: { temperature: 0.6, top_p: 0.95, max_tokens: 4096, seed: 0 },
    latencyMs: 5,
    ...over,
  };
}

/** A formatted candidate: prompt, reasoning and summary put into the one template. */
export function candidate(
  prompt: string,
  reasoning: string,
  summary = 'So the answer is \\boxed{1}.',
  over: Partial<SampleRow> = {},
): Candidate {
  const text = reasoning ? formatThink(reasoning, summary) : summary;
  const parts = reasoningAndSummary(text);
  return {
    sample: sample({ prompt, content: text, ...over }),
    text,
    reasoning: parts.reasoning,
    summary: parts.summary,
  };
}
