/** The verdict the reject-sampling stage records. */
import { compareParsed, goldAnswer } from './compare';
import { extractAnswer } from './extract';
import { parseCached } from './parse';
import type { MathVerification } from './types';

/** Verify a model response against a gold answer. Fails closed on a gold that cannot be compared. */
export function verifyMath(response: string, gold: string): MathVerification {
  const gp = parseCached(goldAnswer(gold ?? ''));
  const ex = extractAnswer(response ?? '');
  if (!gp.value)
    return {
      verdict: 'unparseable_gold',
      extracted: ex.answer,
      reason: `gold answer is not comparable (${gp.why}): ${JSON.stringify(gold)}`,
    };
  if (ex.answer === null)
    return { verdict: 'no_answer', extracted: null, reason: `no final answer found (${ex.method})` };
  const eq = compareParsed(parseCached(ex.answer), gp);
  return { verdict: eq.equal ? 'correct' : 'incorrect', extracted: ex.answer, reason: `${ex.method}: ${eq.reason}` };
}
