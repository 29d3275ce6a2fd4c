import { z } from 'zod';

/**
 * Adaptive rejection sampling: a prompt is sampled in rounds of `roundSize`, each sample verified as its round
 * returns, and sampling stops once `stopAfterAccepted` samples are correct (never before `minSamples` are drawn) or
 * `maxSamples` are drawn. With `giveUpAfter`, a prompt whose first `giveUpAfter` samples are all wrong stops there.
 */
export const AdaptiveSamplingSchema = z
  .object({
    minSamples: z.number().int().min(1).max(128).default(1),
    maxSamples: z.number().int().min(1).max(128).default(16),
    /** Default: verifier.keepPerPrompt (more correct samples than are kept buy nothing). */
    stopAfterAccepted: z.number().int().min(1).max(128).optional(),
    roundSize: z.number().int().min(1).max(128).default(4),
    giveUpAfter: z.number().int().min(1).max(128).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.minSamples > a.maxSamples)
      ctx.addIssue({
        code: 'custom',
        path: ['minSamples'],
        message: `minSamples ${a.minSamples} is more than maxSamples ${a.maxSamples}`,
      });
    if (a.roundSize > a.maxSamples)
      ctx.addIssue({
        code: 'custom',
        path: ['roundSize'],
        message: `roundSize ${a.roundSize} is more than maxSamples ${a.maxSamples}`,
      });
    if (a.stopAfterAccepted !== undefined && a.stopAfterAccepted > a.maxSamples) {
      ctx.addIssue({
        code: 'custom',
        path: ['stopAfterAccepted'],
        message: `stopAfterAccepted ${a.stopAfterAccepted} can never be reached with maxSamples ${a.maxSamples}`,
      });
    }
    if (a.giveUpAfter !== undefined && (a.giveUpAfter < a.minSamples || a.giveUpAfter > a.maxSamples)) {
      ctx.addIssue({
        code: 'custom',
        path: ['giveUpAfter'],
        message: `giveUpAfter ${a.giveUpAfter} must lie between minSamples ${a.minSamples} and maxSamples ${a.maxSamples}`,
      });
    }
  });

/**
 * Cancel generations that are already wasted: each choice is streamed as its own request (n = 1, a seed per choice)
 * and cancelled once its text loops (the repetition filter's loop detector) or passes `maxChars` (the length the
 * filter would reject anyway). The cancelled sample is kept as a rejected sample with why it stopped.
 */
export const AbortWastedSchema = z
  .object({
    /** Cancel a choice whose text holds a span repeated `loopRepeats` times in a row over `minLoopTokens` tokens. */
    loops: z.boolean().default(true),
    ngram: z.number().int().min(2).max(50).default(10),
    loopRepeats: z.number().int().min(2).default(3),
    minLoopTokens: z.number().int().min(2).default(30),
    /** Cancel a choice whose reasoning and answer pass this many characters. */
    maxChars: z.number().int().positive().optional(),
    /** How often the stream is checked, in characters received. */
    checkEveryChars: z.number().int().min(16).max(65536).default(256),
  })
  .strict();

/** Keys are OpenAI's request parameter names: they go to the teacher as they are. Defaults are R1's. */
export const SamplingSchema = z
  .object({
    n: z.number().int().min(1).max(128).default(4),
    temperature: z.number().min(0).max(2).default(0.6),
    top_p: z.number().gt(0).max(1).default(0.95),
    max_tokens: z.number().int().positive().default(4096),
    seed: z.number().int().default(0),
    stop: z.array(z.string()).max(4).optional(),
    /**
     * Ask for the chosen token's and the top-k alternatives' log-probabilities (OpenAI's logprobs + top_logprobs = k)
     * and keep them in a sidecar beside the samples (soft targets for fineTune.objective kd). Needs a self-hosted
     * teacher: hosted reasoning APIs refuse logprobs.
     */
    logprobs: z.number().int().min(1).max(100).optional(),
    /** Sample in rounds and stop each prompt once enough samples are correct (replaces the fixed `n`). */
    adaptive: AdaptiveSamplingSchema.optional(),
    abortWasted: AbortWastedSchema.optional(),
  })
  .strict();
