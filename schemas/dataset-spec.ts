import { z } from 'zod';
import { FilterOptionsSchema } from './filter-options';

/** Where a run's prompts come from: one dataset source, or a mixture of named sources with weights. */

export const builtinArithmetic = z
  .object({
    type: z.literal('builtin'),
    task: z.literal('arithmetic'),
    count: z.number().int().positive().max(1_000_000).default(500),
    seed: z.number().int().default(0),
    digits: z.number().int().min(1).max(6).default(2),
    ops: z
      .array(z.enum(['+', '-']))
      .nonempty()
      .default(['+']),
  })
  .strict();

const fieldMapping = z
  .object({
    id: z.string().min(1).default('id'),
    prompt: z.string().min(1).default('prompt'),
    answer: z.string().min(1).default('answer'),
    /** Optional per-row task type (math, choice, exact, regex, code, judge): overrides verifier.type for that row. */
    task: z.string().min(1).optional(),
    /** Optional per-row tests for code tasks (a string or any JSON value). */
    tests: z.string().min(1).optional(),
    /** The response already in the data (a source with `responses: existing` trains on it instead of asking the teacher). */
    response: z.string().min(1).optional(),
  })
  .strict();

const fileSource = <T extends 'jsonl' | 'parquet'>(type: T) =>
  z
    .object({
      type: z.literal(type),
      path: z.string().min(1),
      fields: fieldMapping.default({ id: 'id', prompt: 'prompt', answer: 'answer' }),
    })
    .strict();

/** The builtin non-reasoning task: write a number in English words (activities/dataset/number-words-task.ts). */
export const builtinNumberWords = z
  .object({
    type: z.literal('builtin'),
    task: z.literal('number-words'),
    count: z.number().int().positive().max(1_000_000).default(500),
    seed: z.number().int().default(0),
    maxValue: z.number().int().min(1).max(999_999).default(9999),
  })
  .strict();

/** A local Hugging Face-style dataset directory: its data files (JSONL or Parquet) whose names contain the split. */
const hfDirectorySource = z
  .object({
    type: z.literal('hf'),
    path: z.string().min(1),
    split: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('train'),
    fields: fieldMapping.default({ id: 'id', prompt: 'prompt', answer: 'answer' }),
  })
  .strict();

export const SourceSchema = z.discriminatedUnion(
  'type',
  [
    z.discriminatedUnion(
      'task',
      [
        builtinArithmetic.extend({ split: z.literal('train').default('train') }),
        builtinNumberWords.extend({ split: z.literal('train').default('train') }),
      ],
      {
        error: (iss) =>
          `the builtin task must be "arithmetic" or "number-words", got ${JSON.stringify((iss.input as { task?: unknown } | undefined)?.task)}`,
      },
    ),
    fileSource('jsonl'),
    fileSource('parquet'),
    hfDirectorySource,
  ],
  {
    error: (iss) => {
      const input = iss.input as { type?: unknown; task?: unknown; path?: unknown } | undefined;
      if (input?.type === 'builtin')
        return `source.task must be "arithmetic" or "number-words", got ${JSON.stringify(input.task)}`;
      const where = typeof input?.path === 'string' ? ` (${input.path})` : '';
      return `dataset.source.type must be "builtin", "jsonl", "parquet" or "hf"${where}, got ${JSON.stringify(input?.type)}`;
    },
  },
);

export const DatasetSchema = z
  .object({
    source: SourceSchema,
    limit: z.number().int().positive().optional(),
  })
  .strict();

/** The verifier a source's samples go through; `none` accepts every sample (existing responses, open-ended answers). */
export const SOURCE_VERIFIERS = ['math', 'choice', 'exact', 'regex', 'code', 'judge', 'none'] as const;

/** Per-source sampling: any of the run's sampling keys, replacing the run's value for this source only. */
const SamplingOverridesSchema = z
  .object({
    n: z.number().int().min(1).max(128).optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: z.number().int().positive().optional(),
    seed: z.number().int().optional(),
    stop: z.array(z.string()).max(4).optional(),
  })
  .strict();

/**
 * One source of a mixture (R1 trained on ~600k reasoning and ~200k non-reasoning samples). Its share of the final SFT
 * set is its `weight` (relative to the other weighted sources) or a fixed `maxSamples`.
 */
export const MixSourceSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/, 'letters, digits, _ - (max 32), starting with a letter or digit'),
    source: SourceSchema,
    kind: z.enum(['reasoning', 'non-reasoning']),
    /** Default: the run's verifier.type for a reasoning source, none for a non-reasoning one. */
    verifier: z.enum(SOURCE_VERIFIERS).optional(),
    sampling: SamplingOverridesSchema.optional(),
    /** Replaces teacher.systemPrompt for this source's prompts. */
    systemPrompt: z.string().optional(),
    /** existing: train on the response already in the data (source.fields.response), without calling the teacher. */
    responses: z.enum(['teacher', 'existing']).default('teacher'),
    /** The <think> block: required (reasoning default), optional, or none (non-reasoning default: answered without one). */
    think: z.enum(['required', 'optional', 'none']).optional(),
    weight: z.number().positive().max(1_000_000).optional(),
    maxSamples: z.number().int().positive().optional(),
    /** Prompts read from the source at most (the rest are quarantined as over_limit). */
    limit: z.number().int().positive().optional(),
    /**
     * This source's own filter settings, over the run's `filters`: maxChars and the language, length (not its
     * tokenizer) and repetition sections, key by key. Dedup and decontamination always run across all sources.
     */
    filters: z
      .object({
        maxChars: z.number().int().positive().optional(),
        language: z.record(z.string(), z.unknown()).optional(),
        length: z.record(z.string(), z.unknown()).optional(),
        repetition: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.filters) {
      if (d.filters.length && 'tokenizer' in d.filters.length)
        ctx.addIssue({
          code: 'custom',
          path: ['filters', 'length', 'tokenizer'],
          message: `source ${d.name}: the tokenizer is the run's (filters.length.tokenizer), not a source's`,
        });
      const checked = FilterOptionsSchema.safeParse(d.filters);
      if (!checked.success)
        for (const i of checked.error.issues)
          ctx.addIssue({
            code: 'custom',
            path: ['filters', ...i.path.map(String)],
            message: `source ${d.name}: ${i.message}`,
          });
    }
    if (d.weight !== undefined && d.maxSamples !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['maxSamples'],
        message: `source ${d.name}: give weight or maxSamples, not both`,
      });
    if (d.responses === 'existing' && (d.source.type === 'builtin' || !d.source.fields.response)) {
      ctx.addIssue({
        code: 'custom',
        path: ['responses'],
        message: `source ${d.name}: responses "existing" needs a jsonl, parquet or hf source whose fields.response names the column holding the responses`,
      });
    }
  });

export const MixingSchema = z
  .object({
    /** Seeds the downsampling, the repetition order and the final shuffle. */
    seed: z.number().int().default(0),
    /**
     * Size of the final SFT set. Unset: the largest set that needs no repetition of a weighted source. Set: weighted
     * sources short of their share are repeated (stated in the card).
     */
    total: z.number().int().positive().optional(),
  })
  .strict();

export type MixSource = z.output<typeof MixSourceSchema>;
export type DatasetSource = z.output<typeof SourceSchema>;
