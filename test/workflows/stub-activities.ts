import type { CpuActivities, GpuActivities, WorkflowActivities } from '../../activities';
import { getPromoted, promote, readIncumbent } from '../../activities/evaluate/promoted';
import { normaliseRunSpec } from '../../activities/spec/normalise-run-spec';
import type { EvaluateInput, EvaluateResult } from '../../activities/evaluate/evaluate';
import type { ArtifactRef } from '../../schemas/artifact';

/**
 * Test doubles of the stage activities, for workflow tests that exercise orchestration only (controls, budget,
 * continue-as-new, skip, gate) in milliseconds instead of the minutes the real stages take. They return plausible
 * results and record every call; the promoted pointer's activities (getPromoted, readIncumbent, promote) and the
 * spec normalisation are the real ones, on the test's own artifact root.
 */
export interface StubConfig {
  /** Prompts the prepare stage keeps, and how many it found seen by earlier runs of the lineage. */
  kept?: number;
  seen?: number;
  shardSize?: number;
  /** Teacher tokens each shard reports (drive the cost and the budget). */
  shardTokens?: { prompt: number; completion: number };
  /** Awaited before each shard finishes: a test holds shards here to pause or change limits mid-generation. */
  beforeShardDone?: (shardIndex: number) => Promise<void>;
  /** pass@1 each evaluated model scores (by model name; 0 when not listed). */
  scores?: Record<string, number>;
  /** Runs inside the evaluate stub (e.g. another run promotes meanwhile). */
  duringEvaluate?: () => Promise<void>;
}

export interface Call {
  name: string;
  input: unknown;
}

const ref = (what: string, count = 1): ArtifactRef => ({ uri: `file:///stub/${what}`, sha256: '0'.repeat(64), count });

export type AllActivities = WorkflowActivities & CpuActivities & GpuActivities;

/** Every activity a distillation run may call (the worker registers these names). */
export const ACTIVITY_NAMES: string[] = Object.keys(stubActivities().activities);

export function stubActivities(cfg: StubConfig = {}): {
  activities: AllActivities;
  calls: Call[];
  called: (name: string) => Call[];
} {
  const calls: Call[] = [];
  const record =
    <I, O>(name: string, fn: (input: I) => Promise<O>) =>
    async (input: I): Promise<O> => {
      calls.push({ name, input });
      return fn(input);
    };
  const kept = cfg.kept ?? 40;
  const shardSize = cfg.shardSize ?? 10;
  const shardCount = Math.ceil(kept / shardSize);
  const tokens = cfg.shardTokens ?? { prompt: 100, completion: 400 };

  const activities: AllActivities = {
    normaliseRunSpec: record('normaliseRunSpec', normaliseRunSpec),
    prepareDataset: record('prepareDataset', async (input: { artifactRoot: string; runId: string }) => ({
      runDir: `${input.artifactRoot}/${input.runId}`,
      rowsIn: kept + (cfg.seen ?? 0),
      kept,
      quarantined: 0,
      prompts: ref('prompts', kept),
      quarantine: ref('quarantine', 0),
      shardCount,
      seen: cfg.seen ?? 0,
      promptHashes: ref('prompt-hashes', kept),
      datasetVersion: `v-${kept}`,
    })),
    generateShard: record('generateShard', async (input: { shardIndex: number }) => {
      await cfg.beforeShardDone?.(input.shardIndex);
      return {
        shardIndex: input.shardIndex,
        samplesRef: ref(`shard-${input.shardIndex}`, shardSize * 2),
        prompts: shardSize,
        samples: shardSize * 2,
        requests: shardSize,
        promptTokens: tokens.prompt,
        completionTokens: tokens.completion,
        resumedSamples: 0,
      };
    }) as AllActivities['generateShard'],
    mergeShards: record('mergeShards', async (input: { shardCount: number }) => ({
      samples: ref('samples', input.shardCount * shardSize * 2),
      prompts: input.shardCount * shardSize,
      promptTokens: input.shardCount * tokens.prompt,
      completionTokens: input.shardCount * tokens.completion,
    })) as AllActivities['mergeShards'],
    rejectSample: record('rejectSample', async (input: { samples: ArtifactRef }) => ({
      samplesIn: input.samples.count,
      accepted: input.samples.count / 2,
      rejected: input.samples.count / 2,
      acceptanceRate: 0.5,
      reasons: { incorrect: input.samples.count / 2 },
      prompts: input.samples.count / 2,
      promptsSolved: input.samples.count / 2,
      acceptedRef: ref('accepted', input.samples.count / 2),
      rejectsRef: ref('verify-rejects', input.samples.count / 2),
      passRatesRef: ref('pass-rates'),
    })) as AllActivities['rejectSample'],
    mergeLineageAccepted: record('mergeLineageAccepted', async (input: { accepted: ArtifactRef }) => ({
      accepted: input.accepted,
      fromThisRun: input.accepted.count,
      fromEarlierRuns: 0,
      duplicatesSkipped: 0,
    })) as AllActivities['mergeLineageAccepted'],
    formatFilter: record('formatFilter', async (input: { accepted: ArtifactRef }) => ({
      samplesIn: input.accepted.count,
      kept: input.accepted.count,
      rejected: 0,
      reasons: {},
      sftRef: ref('sft', input.accepted.count),
      rejectsRef: ref('filter-rejects', 0),
      cardRef: ref('card'),
      cardMarkdownRef: ref('card-md'),
    })) as AllActivities['formatFilter'],
    fineTune: record('fineTune', async (input: { runDir: string }) => ({
      modelDir: `${input.runDir}/finetune/model`,
      baselineModelDir: `${input.runDir}/finetune/baseline-model`,
      steps: 5,
      finalLoss: 0.5,
      resumedFromStep: 0,
      tokensPerSecond: null,
      report: ref('train-report'),
      studentKind: 'tiny' as const,
    })) as AllActivities['fineTune'],
    openaiFineTune: record('openaiFineTune', async () => {
      throw new Error('the stubbed runs use the tiny backend');
    }) as AllActivities['openaiFineTune'],
    evaluate: record('evaluate', async (input: EvaluateInput): Promise<EvaluateResult> => {
      await cfg.duringEvaluate?.();
      const scores = input.models.map((m) => {
        const mean = cfg.scores?.[m.name] ?? 0;
        return {
          name: m.name,
          pass1: { mean, stderr: 0 },
          samples: 10,
          correct: Math.round(mean * 10),
          truncated: 0,
          answerChars: { mean: 10, stderr: 0 },
        };
      });
      return {
        benchmark: 'arithmetic',
        items: 10,
        k: 1,
        seed: 0,
        scores,
        benchmarks: [{ name: 'arithmetic', task: 'math', items: 10, scores }],
        results: ref('eval-results', 10 * scores.length),
        summary: ref('eval-summary'),
      };
    }) as AllActivities['evaluate'],
    getPromoted: record('getPromoted', getPromoted),
    readIncumbent: record('readIncumbent', readIncumbent),
    promote: record('promote', promote),
    writeReport: record('writeReport', async () => ({
      json: ref('report-json'),
      md: ref('report-md'),
      html: ref('report-html'),
    })),
    recordLineageRun: record('recordLineageRun', async () => ref('lineage-run')) as AllActivities['recordLineageRun'],
    listArtifacts: record('listArtifacts', async () => ({ files: [], truncated: false })),
  };
  return { activities, calls, called: (name) => calls.filter((c) => c.name === name) };
}

/** Shards that finish only when the test lets them: `release(n)` lets n more through. */
export function shardValve(): {
  beforeShardDone: (i: number) => Promise<void>;
  release: (n?: number) => void;
  waiting: () => number;
  started: number[];
} {
  const waiters: (() => void)[] = [];
  const started: number[] = [];
  let credit = 0;
  return {
    started,
    beforeShardDone: (i) => {
      started.push(i);
      if (credit > 0) {
        credit -= 1;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    release: (n = 1) => {
      for (let k = 0; k < n; k++) {
        const w = waiters.shift();
        if (w) w();
        else credit += 1;
      }
    },
    waiting: () => waiters.length,
  };
}
