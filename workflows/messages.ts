import type { GenerationCounts } from '../schemas/generation-counts';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Shared by the workflows and their clients (CLI, tests, UI users): names here are the public API of a run. */

export type Stage =
  'validate' | 'prepare' | 'generate' | 'verify' | 'filter' | 'finetune' | 'evaluate' | 'report' | 'done';

export interface GenerationTally extends GenerationCounts {
  shardCount: number;
  shardsDone: number;
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
  /** Paused by the `pause` signal: no new work starts until `resume`. */
  paused: boolean;
  /** The teacher limits in force (changed while running by the `setTeacherLimits` update). */
  teacherLimits: TeacherLimits | null;
  /** Set when the run was cancelled: what it left on disk (partial shards included). */
  cancelled?: { files: { path: string; bytes: number; partial: boolean }[]; truncated: boolean };
}

export interface TeacherLimits {
  /** Requests in flight to the endpoint per worker. */
  maxInFlight?: number;
  /** Request lanes per shard. */
  concurrency?: number;
  /** Shards in flight at once. */
  maxShardsInFlight?: number;
}

export const progressQuery = defineQuery<RunProgress>('progress');
/** A generation child's tally before its first shard. */
export function emptyGenerationTally(shardCount: number): GenerationTally {
  return {
    shardCount,
    shardsDone: 0,
    prompts: 0,
    samples: 0,
    requests: 0,
    promptTokens: 0,
    completionTokens: 0,
    resumedSamples: 0,
    costUSD: 0,
    projectedCostUSD: 0,
    stoppedByBudget: false,
  };
}

export const generationTallyQuery = defineQuery<GenerationTally>('generationTally');
/** Sent by the generation child after each finished shard, so the parent's progress query stays live. */
export const generationProgressSignal = defineSignal<[GenerationTally]>('generationProgress');

/** Pause: no new stage or generation shard starts; work in flight finishes. Resume: carry on. */
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
/** Change the teacher's concurrency while the run goes on (applies to shards started from then on). */
export const setTeacherLimitsUpdate = defineUpdate<TeacherLimits, [TeacherLimits]>('setTeacherLimits');
/** Parent → generation child: the same, forwarded. */
export const teacherLimitsSignal = defineSignal<[TeacherLimits]>('teacherLimits');
