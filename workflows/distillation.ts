import { ApplicationFailure, CancellationScope, isCancellation, patched } from '@temporalio/workflow';
import { evalModels } from './eval-models';
import { generate } from './generation-stage';
import { fineTuneFrom, gateAndReport, readIncumbent } from './promotion';
import { installRunControl } from './run-control';
import { openRun } from './run-context';
import { runSpecOf } from './run-spec';
import { buildSummary, type RunSummary } from './summary';

export type { RunSummary } from './summary';

/**
 * A distillation run: prepare → generate → reject-sample → format/filter → fine-tune → evaluate (→ gate, report).
 * Takes ONE JSON object (the run spec) so it can be started from the Temporal Web UI; it is validated and normalised
 * first (once: see run-spec.ts), and a bad spec fails at once, non-retryably, naming every bad field.
 */
export async function distillationWorkflow(input: unknown): Promise<RunSummary> {
  const control = installRunControl();
  const { progress } = control;
  const spec = await runSpecOf(input);
  const run = openRun(spec, control);
  const { cpu, gpu, incremental, lineage, workflowId: runId } = run;

  await control.enter('prepare');
  // A spec with several sources cannot appear in histories older than mixtures; the patch marks where they began.
  const mixture =
    spec.datasets && patched('dataset-mixture')
      ? { datasets: spec.datasets, mixing: spec.mixing, verifierType: spec.verifier.type }
      : {};
  const prepared = await cpu.prepareDataset({
    artifactRoot: spec.artifactRoot,
    runId,
    dataset: spec.dataset,
    shardSize: spec.generation.shardSize,
    ...(incremental ? { incremental: { lineage } } : {}),
    ...mixture,
    // The whole spec is checked against the worker's policy (keys, paths) at the start; older runs replay without it.
    ...(patched('worker-policy-check') ? { spec } : {}),
  });
  const { runDir } = prepared;
  progress.counts.prepare = {
    in: prepared.rowsIn,
    kept: prepared.kept,
    quarantined: prepared.quarantined,
    shards: prepared.shardCount,
    ...(incremental ? { seen: prepared.seen } : {}),
  };
  for (const [source, c] of Object.entries(prepared.bySource ?? {})) progress.counts[`prepare.${source}`] = { ...c };
  const lineageSummary: RunSummary['incremental'] = incremental
    ? { lineage, seen: prepared.seen, datasetVersion: prepared.datasetVersion }
    : undefined;
  if (incremental && prepared.kept === 0) {
    await control.enter('done');
    const skipped = `no unseen prompts: all ${prepared.seen} usable rows were distilled by earlier runs of lineage ${lineage}`;
    return buildSummary(run, progress, { prepared, incremental: lineageSummary, skipped });
  }

  try {
    await control.enter('generate');
    const { merged } = await generate(run, control, prepared);

    await control.enter('verify');
    const verified = await cpu.rejectSample({ runDir, samples: merged.samples, verifier: spec.verifier });
    progress.acceptanceRate = verified.acceptanceRate;
    progress.counts.verify = {
      in: verified.samplesIn,
      accepted: verified.accepted,
      rejected: verified.rejected,
      prompts: verified.prompts,
      promptsSolved: verified.promptsSolved,
      ...prefixed('rejected.', verified.reasons),
    };
    let accepted = verified.acceptedRef;
    if (incremental && spec.incremental.mergeAccepted) {
      const withEarlier = await cpu.mergeLineageAccepted({
        runDir,
        artifactRoot: spec.artifactRoot,
        lineage,
        runId,
        accepted,
      });
      accepted = withEarlier.accepted;
      progress.counts.merge = {
        thisRun: withEarlier.fromThisRun,
        earlierRuns: withEarlier.fromEarlierRuns,
        duplicatesSkipped: withEarlier.duplicatesSkipped,
      };
      lineageSummary!.mergedFromEarlierRuns = withEarlier.fromEarlierRuns;
    }

    await control.enter('filter');
    const filtered = await cpu.formatFilter({
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
    for (const m of filtered.mix?.sources ?? [])
      progress.counts[`mix.${m.name}`] = {
        filtered: m.available,
        target: m.target,
        final: m.final,
        dropped: m.dropped,
        repeats: m.repeats,
      };
    if (filtered.kept === 0) {
      const why = `No sample survived verification and filtering (${verified.accepted} verified, 0 kept): nothing to fine-tune on. See ${filtered.rejectsRef.uri}`;
      throw ApplicationFailure.nonRetryable(why, 'NoTrainingData');
    }

    await control.enter('finetune');
    const fineTune = await fineTuneFrom(run, lineageSummary);
    // backend 'openai' cannot appear in histories older than this code, so no patch is needed.
    const trained =
      fineTune.backend === 'openai'
        ? await cpu.openaiFineTune({ runDir, sft: filtered.sftRef, fineTune })
        : await gpu.fineTune({ runDir, sft: filtered.sftRef, fineTune, spec, datasetCard: filtered.cardMarkdownRef });
    progress.counts.finetune = { steps: trained.steps, resumedFromStep: trained.resumedFromStep };

    await control.enter('evaluate');
    const incumbent = await readIncumbent(run);
    const ev = spec.evaluation;
    const models = evalModels(spec, trained, incumbent);
    const evaluated = await gpu.evaluate({
      runDir,
      evaluation: ev,
      models,
      maxLen: spec.fineTune.model.maxLen,
      benchmarks: ev.benchmarks,
      passKs: ev.passKs,
      code: spec.verifier.code,
    });
    for (const s of evaluated.scores)
      progress.counts[`evaluate.${s.name}`] = {
        pass1: s.pass1.mean,
        stderr: s.pass1.stderr,
        samples: s.samples,
        ...s.outcomes,
      };
    const summary = buildSummary(run, progress, { prepared, merged, verified, filtered, trained, evaluated });
    await gateAndReport(run, control, summary, trained, evaluated, incumbent);

    if (incremental) {
      summary.incremental = lineageSummary;
      const record = {
        artifactRoot: spec.artifactRoot,
        lineage,
        runId,
        datasetVersion: prepared.datasetVersion,
        prompts: prepared.kept,
        promptHashes: prepared.promptHashes,
        accepted: verified.acceptedRef,
      };
      await cpu.recordLineageRun(record);
    }
    await control.enter('done');
    return summary;
  } catch (err) {
    // A cancelled run stops its activities (cancellation reaches them through heartbeats) and keeps every
    // artifact written so far; they are listed in the progress query for whoever picks the run up.
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        progress.cancelled = await cpu.listArtifacts({ runDir });
      });
    }
    throw err;
  }
}

function prefixed(prefix: string, counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [prefix + k, v]));
}
