import type { SampleRow } from '../../schemas/artifact';
import type { RunSpec } from '../../schemas/run-spec';
import { verifyMath } from './math';

export interface SampleVerdict {
  correct: boolean;
  verdict: string;
  extracted: string | null;
  reason: string;
}

/** The final answer lives after the reasoning: a DeepSeek-style sample keeps its reasoning apart, a <think> one inline. */
export function verifySample(sample: Pick<SampleRow, 'content' | 'answer'>, type: RunSpec['verifier']['type']): SampleVerdict {
  if (type === 'exact') {
    const extracted = sample.content.replace(/^[\s\S]*<\/think>/, '').trim();
    const correct = extracted === sample.answer.trim();
    return { correct, verdict: correct ? 'correct' : 'incorrect', extracted, reason: correct ? 'exact match' : 'text differs from the gold answer' };
  }
  const v = verifyMath(sample.content, sample.answer);
  return { correct: v.verdict === 'correct', verdict: v.verdict, extracted: v.extracted, reason: v.reason };
}
