import { RepetitionMeter } from '../filter/repetition';
import type { RunSpec } from '../../schemas/run-spec';

export type AbortWasted = NonNullable<RunSpec['sampling']['abortWasted']>;

/** Why a streamed generation was cancelled; kept as the sample's finish reason. */
export type AbortReason = 'aborted_loop' | 'aborted_length';

export function isAbortedGeneration(finishReason: string | null | undefined): boolean {
  return finishReason === 'aborted_loop' || finishReason === 'aborted_length';
}

/**
 * Judges a generation while it streams, every `checkEveryChars` characters: over `maxChars`, or already looping
 * (the repetition filter's loop detector on the text so far). A loop, once there, stays in the finished text, so
 * the filter would reject it; cutting it early only saves the tokens it had left.
 */
export class WastedGenerationDetector {
  private readonly meter: RepetitionMeter | null;
  private checkedAt = 0;

  constructor(private readonly opts: AbortWasted) {
    this.meter = opts.loops ? new RepetitionMeter(opts.ngram, opts.loopRepeats, opts.minLoopTokens) : null;
  }

  /** The reason to cancel, or null; `text` is everything received so far (reasoning and answer). */
  check(text: string, final = false): { reason: AbortReason; detail: string } | null {
    if (!final && text.length - this.checkedAt < this.opts.checkEveryChars) return null;
    this.checkedAt = text.length;
    if (this.opts.maxChars !== undefined && text.length > this.opts.maxChars)
      return { reason: 'aborted_length', detail: `${text.length} characters > maxChars ${this.opts.maxChars}` };
    const loop = this.meter?.measure(text).loop;
    if (loop)
      return {
        reason: 'aborted_loop',
        detail: `a ${loop.period}-token span repeated ${loop.repeats}× in a row (${loop.tokens} tokens)`,
      };
    return null;
  }
}
