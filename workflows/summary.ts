import type { CpuActivities, GpuActivities } from '../activities';
import type { GateDecision } from '../core/gate';
import type { ArtifactRef } from '../schemas/artifact';
import type { RunProgress } from './messages';
import type { Run } from './run-context';

export interface RunSummary {
  runId: string;
  name: string;
  runDir: string;
  counts: RunProgress['counts'];
  acceptanceRate: number;
  tokens: RunProgress['tokens'];
  fineTune: { steps: number; finalLoss: number | null; resumedFromStep: number; modelDir: string };
  evaluation: {
    benchmark: string;
    items: number;
    k: number;
    /** Per model: pass@1 ± s.e. and its samples by outcome (correct + incorrect + noAnswer = samples). */
    scores: {
      name: string;
      pass1: number;
      stderr: number;
      samples?: number;
      correct?: number;
      incorrect?: number;
      noAnswer?: number;
    }[];
  };
  artifacts: Record<string, ArtifactRef>;
  /** The promotion gate's decision, when evaluation.gate is set. */
  gate?: GateDecision & { pointer: ArtifactRef | null };
  /** Incremental runs: the lineage, how many prompts earlier runs had seen, the data version, where training started. */
  incremental?: {
    lineage: string;
    seen: number;
    datasetVersion: string;
    mergedFromEarlierRuns?: number;
    initFrom?: { runId: string; modelDir: string } | null;
  };
  /** Set when the run ended early without training, and why (e.g. an incremental run with no unseen prompt). */
  skipped?: string;
}

type Result<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;

/** What the stages have produced so far: a run that ended early has only the first of them. */
export interface StageResults {
  prepared: Result<CpuActivities['prepareDataset']>;
  merged?: Result<CpuActivities['mergeShards']>;
  verified?: Result<CpuActivities['rejectSample']>;
  filtered?: Result<CpuActivities['formatFilter']>;
  trained?: Result<GpuActivities['fineTune']> | Result<CpuActivities['openaiFineTune']>;
  evaluated?: Result<GpuActivities['evaluate']>;
  incremental?: RunSummary['incremental'];
  skipped?: string;
}

/** The run's summary (its result) from what its stages produced, for a run that finished and one that ended early. */
export function buildSummary(run: Run, progress: RunProgress, r: StageResults): RunSummary {
  const { prepared, merged, verified, filtered, trained, evaluated } = r;
  const produced: Record<string, ArtifactRef | undefined> = {
    prompts: prepared.prompts,
    quarantine: prepared.quarantine,
    samples: merged?.samples,
    accepted: verified?.acceptedRef,
    verifyRejects: verified?.rejectsRef,
    passRates: verified?.passRatesRef,
    sft: filtered?.sftRef,
    filterRejects: filtered?.rejectsRef,
    trainReport: trained?.report,
    evalResults: evaluated?.results,
    evalSummary: evaluated?.summary,
  };
  return {
    runId: run.workflowId,
    name: run.spec.name,
    runDir: prepared.runDir,
    counts: progress.counts,
    acceptanceRate: verified?.acceptanceRate ?? 0,
    tokens: progress.tokens,
    fineTune: trained
      ? {
          steps: trained.steps,
          finalLoss: trained.finalLoss,
          resumedFromStep: trained.resumedFromStep,
          modelDir: trained.modelDir,
        }
      : { steps: 0, finalLoss: null, resumedFromStep: 0, modelDir: '' },
    evaluation: evaluated
      ? {
          benchmark: evaluated.benchmark,
          items: evaluated.items,
          k: evaluated.k,
          scores: evaluated.scores.map((s) => ({
            name: s.name,
            pass1: s.pass1.mean,
            stderr: s.pass1.stderr,
            samples: s.samples,
            ...s.outcomes,
          })),
        }
      : { benchmark: '', items: 0, k: 0, scores: [] },
    artifacts: Object.fromEntries(
      Object.entries(produced).filter((e): e is [string, ArtifactRef] => e[1] !== undefined),
    ),
    ...(r.incremental ? { incremental: r.incremental } : {}),
    ...(r.skipped !== undefined ? { skipped: r.skipped } : {}),
  };
}
