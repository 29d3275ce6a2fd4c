import { z } from 'zod';

/**
 * The `filters` section of the run spec (run-spec.ts's `FiltersSchema` is this schema), one section per filter: every
 * missing section gets the defaults below.
 *
 * Only zod here: schemas/, activities and the workflow bundle all import it. Sections whose keys all have defaults
 * use zod 4's `prefault({})`: an absent section is parsed from {} and gets every default.
 */
export const FilterOptionsSchema = z
  .object({
    /** Drop samples without a <think> block (after repairing reasoning_content into one). */
    requireThink: z.boolean().default(true),
    /** Drop samples the teacher cut off (finish_reason = length). */
    dropTruncated: z.boolean().default(true),
    /** Longest formatted answer, in characters (a cheap guard before tokenizing). */
    maxChars: z.number().int().positive().default(32_000),
    /** Drop samples whose prompt and answer equal an earlier one's after lower-casing and collapsing whitespace. */
    dedupExact: z.boolean().default(true),
    format: z
      .object({
        /** The summary after </think> must be concise: longer ones are dropped. */
        maxSummaryChars: z.number().int().positive().default(8000),
        /** The summary must state the final answer: a \boxed{…} or the gold answer's text. */
        requireFinalAnswer: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    language: z
      .object({
        enabled: z.boolean().default(true),
        /** Share of the answer's words (CJK: characters) in scripts absent from the prompt, beyond the answer's main one. */
        maxForeignRatio: z.number().min(0).max(1).default(0.01),
        /** The answer's main script must be the prompt's (an English question answered in Chinese is dropped). */
        sameScriptAsPrompt: z.boolean().default(true),
        /** Also identify the language (tinyld) when both texts are long enough: catches English → Spanish in one script. */
        detect: z.boolean().default(false),
        /** ISO 639-1 code the reasoning must be in (implies detection). */
        expect: z
          .string()
          .regex(/^[a-z]{2}$/, 'an ISO 639-1 code such as en, zh')
          .optional(),
        /** Letters needed before a language is identified (short texts are unreliable). */
        minDetectChars: z.number().int().positive().default(200),
      })
      .strict()
      .prefault({}),
    length: z
      .object({
        /** `estimate` (default), `byte` (the tiny student's byte tokenizer), or a path to a tokenizer.json (HF format). */
        tokenizer: z.string().min(1).default('estimate'),
        /** Fewest completion tokens (0 = no lower bound). */
        minTokens: z.number().int().min(0).default(0),
        /** Most prompt + completion tokens (the training sequence); absent = no upper bound. */
        maxTokens: z.number().int().positive().optional(),
      })
      .strict()
      .prefault({}),
    repetition: z
      .object({
        enabled: z.boolean().default(true),
        /** Word n-gram size for the duplicate-n-gram share. */
        ngram: z.number().int().min(2).max(50).default(10),
        /** Most share of tokens inside n-grams that already occurred earlier in the same answer. */
        maxDuplicateFraction: z.number().min(0).max(1).default(0.5),
        /** A span repeated this many times in a row is a loop… */
        loopRepeats: z.number().int().min(2).default(3),
        /** …when the repeats cover at least this many tokens. */
        minLoopTokens: z.number().int().min(2).default(30),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        maxCodeBlocks: z.number().int().min(0).optional(),
        maxLinks: z.number().int().min(0).optional(),
      })
      .strict()
      .prefault({}),
    difficulty: z
      .object({
        /** Keep prompts whose pass rate in rejection sampling (verify/pass-rates.jsonl) lies in [minPassRate, maxPassRate]. */
        minPassRate: z.number().min(0).max(1).default(0),
        maxPassRate: z.number().min(0).max(1).default(1),
      })
      .strict()
      .prefault({}),
    nearDedup: z
      .object({
        enabled: z.boolean().default(true),
        /** Estimated Jaccard similarity of word shingles at or above which a sample is a near-duplicate of a kept one. */
        threshold: z.number().gt(0).max(1).default(0.8),
        numPerm: z.number().int().min(16).max(512).multipleOf(4).default(128),
        /** Words per shingle. */
        shingleSize: z.number().int().min(1).max(20).default(5),
        /** What is compared: prompt + answer (default), the answer alone, or the prompt alone (one sample per prompt). */
        scope: z.enum(['sample', 'response', 'prompt']).default('sample'),
        /** Candidates checked per LSH band (bounds the cost on heavily templated data). */
        maxCandidates: z.number().int().positive().default(64),
      })
      .strict()
      .prefault({}),
    /** SFT datasets of earlier runs (JSONL: messages, ShareGPT, or prompt/content rows) to deduplicate against. */
    earlierDatasets: z.array(z.string().min(1)).default([]),
    decontaminate: z
      .object({
        enabled: z.boolean().default(true),
        /** Words per n-gram shared with a benchmark problem that marks a prompt contaminated (open-r1 uses 8). */
        ngram: z.number().int().min(3).max(64).default(8),
        /** Also decontaminate against the run's own evaluation benchmark (the builtin arithmetic held-out problems). */
        evaluationBenchmark: z.boolean().default(true),
        /** Benchmark files: JSONL with the problem text in `field`. */
        benchmarks: z
          .array(
            z
              .object({
                path: z.string().min(1),
                field: z.string().min(1).default('problem'),
                name: z.string().min(1).optional(),
              })
              .strict(),
          )
          .default([]),
        /** Check the answer too, not only the prompt. */
        checkResponse: z.boolean().default(false),
        /** Benchmark problems shorter than `ngram` words match as a whole when they have at least this many. */
        minItemTokens: z.number().int().min(1).default(3),
      })
      .strict()
      .prefault({}),
    output: z
      .object({
        /** Also write the SFT set in ShareGPT format (filter/sft.sharegpt.jsonl). */
        sharegpt: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((f) => f.difficulty.minPassRate <= f.difficulty.maxPassRate, {
    message: 'difficulty.minPassRate must not exceed maxPassRate',
    path: ['difficulty'],
  });

export type FilterOptions = z.output<typeof FilterOptionsSchema>;
export type FilterOptionsInput = z.input<typeof FilterOptionsSchema>;

/** Fills the defaults of every section the caller left out (accepts today's `RunSpec['filters']`). */
export function resolveFilters(filters: FilterOptionsInput | undefined): FilterOptions {
  return FilterOptionsSchema.parse(filters ?? {});
}
