import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import type { ArtifactRef } from '../schemas/artifact';
import type { RunSpec } from '../schemas/run-spec';
import { evalModels } from './eval-models';
import type { RunProgress } from './messages';
import type { IncumbentModel } from '../activities/evaluate/promoted';
import type { Run } from './run-context';
import type { RunSummary } from './summary';

/**
 * Each stage's activity call and what it adds to the run's progress counts: the workflow reads as the list of these.
 * The commands and their order are the ones recorded histories hold (test/integration/replay.test.ts).
 */

type Result<F extends (...args: never[]) => Promise<unknown>> = Awaited<ReturnType<F>>;
export type Prepared = Result<CpuActivities['prepareDataset']>;
export type Merged = Result<CpuActivities['mergeShards']>;
export type Verified = Result<CpuActivities['rejectSample']>;
export type Filtered = Result<CpuActivities['formatFilter']>;
export type Trained = Result<GpuActivities['fineTune']> | Result<CpuActivities['openaiFineTune']>;
export type Evaluated = Result<GpuActivities['evaluate']>;

export async function prepare(run: Run, progress: RunProgress): Promise<Prepared> {
  const { spec, incremental, lineage } = run;
  // A spec with several sources cannot appear in histories older than mixtures; the patch marks where they began.
  const mixture =
    spec.datasets && patched('dataset-mixture')
      ? { datasets: spec.datasets, mixing: spec.mixing, verifierType: spec.verifier.type }
      : {};
  const prepared = await run.cpu.prepareDataset({
    artifactRoot: spec.artifactRoot,
    runId: run.workflowId,
    dataset: spec.dataset,
    shardSize: spec.generation.shardSize,
    ...(incremental ? { incremental: { lineage } } : {}),
    ...mixture,
    // The whole spec is checked against the worker's policy (keys, paths) at the start; older runs replay without it.
    ...(patched('worker-policy-check') ? { spec } : {}),
  });
  progress.counts.prepare = {
    in: prepared.rowsIn,
    kept: prepared.kept,
    quarantined: prepared.quarantined,
    shards: prepared.shardCount,
    ...(incremental ? { seen: prepared.seen } : {}),
  };
  for (const [source, c] of Object.entries(prepared.bySource ?? {})) progress.counts[`prepare.${source}`] = { ...c };
  return prepared;
}

export async function verify(run: Run, progress: RunProgress, runDir: string, merged: Merged): Promise<Verified> {
  const verified = await run.cpu.rejectSample({ runDir, samples: merged.samples, verifier: run.spec.verifier });
  progress.acceptanceRate = verified.acceptanceRate;
  progress.counts.verify = {
    in: verified.samplesIn,
    accepted: verified.accepted,
    rejected: verified.rejected,
    prompts: verified.prompts,
    promptsSolved: verified.promptsSolved,
    ...prefixed('rejected.', verified.reasons),
  };
  return verified;
}

/** The accepted samples to filter: this run's, and with incremental.mergeAccepted its lineage's earlier ones too. */
export async function acceptedToFilter(
  run: Run,
  progress: RunProgress,
  runDir: string,
  verified: Verified,
  lineageSummary: RunSummary['incremental'],
): Promise<ArtifactRef> {
  const { spec } = run;
  if (!run.incremental || !spec.incremental.mergeAccepted) return verified.acceptedRef;
  const withEarlier = await run.cpu.mergeLineageAccepted({
    runDir,
    artifactRoot: spec.artifactRoot,
    lineage: run.lineage,
    runId: run.workflowId,
    accepted: verified.acceptedRef,
  });
  progress.counts.merge = {
    thisRun: withEarlier.fromThisRun,
    earlierRuns: withEarlier.fromEarlierRuns,
    duplicatesSkipped: withEarlier.duplicatesSkipped,
  };
  lineageSummary!.mergedFromEarlierRuns = withEarlier.fromEarlierRuns;
  return withEarlier.accepted;
}

export async function filter(
  run: Run,
  progress: RunProgress,
  runDir: string,
  accepted: ArtifactRef,
  verified: Verified,
): Promise<Filtered> {
  const { spec } = run;
  const filtered = await run.cpu.formatFilter({
    runDir,
    accepted,
    filters: spec.filters,
    passRates: verified.passRatesRef,
    spec,
  });
  progress.counts.filter = {
    in: filtered.samplesIn,
    kept: filtered.kept,
    rejected: filtered.rejected,
    ...prefixed('rejected.', filtered.reasons),
  };
  for (const m of filtered.mix?.sources ?? []) {
    const { available: filteredRows, target, final, dropped, repeats } = m;
    progress.counts[`mix.${m.name}`] = { filtered: filteredRows, target, final, dropped, repeats };
  }
  if (filtered.kept === 0) {
    const why = `No sample survived verification and filtering (${verified.accepted} verified, 0 kept): nothing to fine-tune on. See ${filtered.rejectsRef.uri}`;
    throw ApplicationFailure.nonRetryable(why, 'NoTrainingData');
  }
  return filtered;
}

export async function fineTune(
  run: Run,
  progress: RunProgress,
  runDir: string,
  fineTune: RunSpec['fineTune'],
  filtered: Filtered,
): Promise<Trained> {
  const sft = filtered.sftRef;
  // backend 'openai' cannot appear in histories older than this code, so no patch is needed.
  const trained =
    fineTune.backend === 'openai'
      ? await run.cpu.openaiFineTune({ runDir, sft, fineTune })
      : await run.gpu.fineTune({ runDir, sft, fineTune, spec: run.spec, datasetCard: filtered.cardMarkdownRef });
  progress.counts.finetune = { steps: trained.steps, resumedFromStep: trained.resumedFromStep };
  return trained;
}

export async function evaluate(
  run: Run,
  progress: RunProgress,
  runDir: string,
  trained: Trained,
  incumbent: IncumbentModel | null | undefined,
): Promise<Evaluated> {
  const { spec } = run;
  const ev = spec.evaluation;
  const evaluated = await run.gpu.evaluate({
    runDir,
    evaluation: ev,
    models: evalModels(spec, trained, incumbent),
    maxLen: spec.fineTune.model.maxLen,
    benchmarks: ev.benchmarks,
    passKs: ev.passKs,
    code: spec.verifier.code,
  });
  for (const s of evaluated.scores) {
    const { mean: pass1, stderr } = s.pass1;
    progress.counts[`evaluate.${s.name}`] = { pass1, stderr, samples: s.samples, ...s.outcomes };
  }
  return evaluated;
}

/** An incremental run records what it distilled, so later runs of its lineage skip those prompts. */
export async function recordLineage(run: Run, prepared: Prepared, verified: Verified): Promise<void> {
  await run.cpu.recordLineageRun({
    artifactRoot: run.spec.artifactRoot,
    lineage: run.lineage,
    runId: run.workflowId,
    datasetVersion: prepared.datasetVersion,
    prompts: prepared.kept,
    promptHashes: prepared.promptHashes,
    accepted: verified.acceptedRef,
  });
}

function prefixed(prefix: string, counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [prefix + k, v]));
}
