/**
 * Empty and truncated completions, judged before formatting: a completion the teacher stopped because it hit
 * max_tokens (finish_reason = length) ends mid-thought, one stopped by the provider's content filter is incomplete,
 * and one with neither content nor reasoning has nothing to learn from.
 */
import type { SampleRow } from '../../schemas/artifact';
import type { Verdict } from './types';
import { isAbortedGeneration } from '../generate/wasted-generation';

export function checkCompletion(
  s: Pick<SampleRow, 'content' | 'reasoning' | 'finishReason'>,
  dropTruncated: boolean,
): Verdict {
  if (isAbortedGeneration(s.finishReason))
    return { reason: 'aborted', detail: `generation cancelled mid-stream (${s.finishReason})` };
  if (dropTruncated && s.finishReason === 'length') return { reason: 'truncated', detail: 'finish_reason = length' };
  if (dropTruncated && s.finishReason === 'content_filter')
    return { reason: 'content_filter', detail: 'finish_reason = content_filter' };
  if (!(s.content ?? '').trim() && !(s.reasoning ?? '').trim())
    return { reason: 'empty', detail: 'no content and no reasoning' };
  return null;
}
