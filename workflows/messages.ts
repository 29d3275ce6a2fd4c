import { defineQuery, defineSignal } from '@temporalio/workflow';

/** Shared by the workflows and their clients (CLI, tests, UI users): names here are the public API of a run. */

export type Stage = 'validate' | 'prepare' | 'generate' | 'verify' | 'filter' | 'finetune' | 'evaluate' | 'done';

export interface GenerationTally {
  shardCount: number;
  shardsDone: number;
  prompts: number;
  samples: number;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  resumedSamples: number;
  /** Teacher spend so far (USD, from spec.teacher.pricing), and the whole run's projection from the shards done. */
  costUSD: number;
  projectedCostUSD: number;
  /** Generation stopped starting shards because spec.teacher.budgetUSD was spent; finished shards go on. */
  stoppedByBudget: boolean;
}

export interface RunProgress {
  runId: string;
  name: string | null;
  stage: Stage;
  stageStartedAt: string;
  counts: Record<string, Record<string, number>>;
  generation: GenerationTally | null;
  acceptanceRate: number | null;
  tokens: { prompt: number; completion: number };
}

export const progressQuery = defineQuery<RunProgress>('progress');
export const generationTallyQuery = defineQuery<GenerationTally>('generationTally');
/** Sent by the generation child after each finished shard, so the parent's progress query stays live. */
export const generationProgressSignal = defineSignal<[GenerationTally]>('generationProgress');
