import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { CpuActivities, GpuActivities } from '../activities';
import type { ArtifactRef } from '../schemas/artifact';
import { checkRunSpec, describeSpecIssues, type RunSpec } from '../schemas/run-spec';
import { scoresByBenchmark, type GateDecision } from '../activities/evaluate/gate';
import { evalModels } from './eval-models';
import { generationWorkflow } from './generation';
import { RUN_NAME, STAGE, STUDENT, TEACHER } from './search-attributes';
import {
  generationProgressSignal,
  pauseSignal,
  progressQuery,
  resumeSignal,
  setTeacherLimitsUpdate,
  teacherLimitsSignal,
  type GenerationTally,
  type RunProgress,
  type Stage,
  type TeacherLimits,
} from './messages';

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
    scores: { name: string; pass1: number; stderr: number; samples?: number; correct?: number; incorrect?: number; noAnswer?: number }[];
  };
  artifacts: Record<string, ArtifactRef>;
  /** The promotion gate's decision, when evaluation.gate is set. */
  gate?: GateDecision & { pointer: ArtifactRef | null };
  /** Incremental runs: the lineage, how many prompts earlier runs had seen, the data version, where training started. */
  incremental?: { lineage: string; seen: number; datasetVersion: string; mergedFromEarlierRuns?: number; initFrom?: { runId: string; modelDir: string } | null };
  /** Set when the run ended early without training, and why (e.g. an incremental run with no unseen prompt). */
  skipped?: string;
}

/**
 * A distillation run: prepare → generate → reject-sample → format/filter → fine-tune → evaluate.
 * Takes ONE JSON object (the run spec) so it can be started from the Temporal Web UI; it is validated here first,
 * and a bad spec fails at once, non-retryably, naming every bad field.
 */
export async function distillationWorkflow(input: unknown): Promise<RunSummary> {
  const info = workflowInfo();
  const progress: RunProgress = {
    runId: info.workflowId,
    name: null,
    stage: 'validate',
    stageStartedAt: new Date().toISOString(),
    counts: {},
    generation: null,
    acceptanceRate: null,
    tokens: { prompt: 0, completion: 0 },
    paused: false,
    teacherLimits: null,
  };
  setHandler(progressQuery, () => progress);
  const generationId = `${info.workflowId}-generate`;
  const toGeneration = async (send: (child: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>) => {
    if (progress.stage === 'generate') await send(getExternalWorkflowHandle(generationId)).catch(() => undefined);
  };
  setHandler(pauseSignal, async () => {
    progress.paused = true;
    await toGeneration((child) => child.signal(pauseSignal));
  });
  setHandler(resumeSignal, async () => {
    progress.paused = false;
    await toGeneration((child) => child.signal(resumeSignal));
  });
  setHandler(
    setTeacherLimitsUpdate,
    async (limits: TeacherLimits) => {
      progress.teacherLimits = { ...progress.teacherLimits, ...limits };
      await toGeneration((child) => child.signal(teacherLimitsSignal, limits));
      return progress.teacherLimits;
    },
    {
      validator: (limits: TeacherLimits) => {
        for (const [k, v] of Object.entries(limits)) {
          if (!['maxInFlight', 'concurrency', 'maxShardsInFlight'].includes(k)) throw new Error(`unknown limit ${k}`);
          if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
        }
        if (['verify', 'filter', 'finetune', 'evaluate', 'done'].includes(progress.stage)) throw new Error(`generation is over (stage ${progress.stage})`);
      },
    },
  );
  setHandler(generationProgressSignal, (tally: GenerationTally) => {
    progress.generation = tally;
    progress.tokens = { prompt: tally.promptTokens, completion: tally.completionTokens };
  });
  let searchAttributes = false;
  // A paused run starts no new stage until it is resumed.
  const enter = async (stage: Stage) => {
    await condition(() => !progress.paused);
    progress.stage = stage;
    progress.stageStartedAt = new Date().toISOString();
    if (searchAttributes) upsertSearchAttributes([{ key: STAGE, value: stage }]);
  };

  const checked = checkRunSpec(input);
  if (!checked.ok) throw ApplicationFailure.nonRetryable(describeSpecIssues(checked.issues), 'InvalidRunSpec', { issues: checked.issues });
  const spec: RunSpec = checked.spec;
  progress.name = spec.name;
  // Runs that started before search attributes existed replay without them.
  searchAttributes = patched('search-attributes');
  if (searchAttributes) {
    upsertSearchAttributes([
      { key: RUN_NAME, value: spec.name },
      { key: TEACHER, value: spec.teacher.model },
      { key: STUDENT, value: studentName(spec) },
    ]);
  }
  const lineage = spec.incremental.lineage ?? spec.name;
  const incremental = spec.incremental.enabled && patched('incremental-lineage');
  const pointerName = spec.evaluation.gate?.name ?? spec.name;

  const retry: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 };
  const timeouts = { startToCloseTimeout: spec.timeouts.stageHours * 3_600_000, heartbeatTimeout: spec.timeouts.heartbeatSeconds * 1000 };
  const cpu = proxyActivities<CpuActivities>({ taskQueue: spec.taskQueues.cpu, ...timeouts, retry });
  const gpu = proxyActivities<GpuActivities>({ taskQueue: spec.taskQueues.gpu, ...timeouts, retry });

  await enter('prepare');
  const prepared = await cpu.prepareDataset({
    artifactRoot: spec.artifactRoot,
    runId: info.workflowId,
    dataset: spec.dataset,
    shardSize: spec.generation.shardSize,
    ...(incremental ? { incremental: { lineage } } : {}),
  });
  const { runDir } = prepared;
  progress.counts.prepare = { in: prepared.rowsIn, kept: prepared.kept, quarantined: prepared.quarantined, shards: prepared.shardCount, ...(incremental ? { seen: prepared.seen } : {}) };
  const incrementalSummary: RunSummary['incremental'] = incremental ? { lineage, seen: prepared.seen, datasetVersion: prepared.datasetVersion } : undefined;
  if (incremental && prepared.kept === 0) {
    await enter('done');
    return {
      runId: info.workflowId,
      name: spec.name,
      runDir,
      counts: progress.counts,
      acceptanceRate: 0,
      tokens: progress.tokens,
      fineTune: { steps: 0, finalLoss: null, resumedFromStep: 0, modelDir: '' },
      evaluation: { benchmark: '', items: 0, k: 0, scores: [] },
      artifacts: { prompts: prepared.prompts, quarantine: prepared.quarantine },
      incremental: incrementalSummary,
      skipped: `no unseen prompts: all ${prepared.seen} usable rows were distilled by earlier runs of lineage ${lineage}`,
    };
  }

  try {
    await enter('generate');
    const emptyTally: GenerationTally = {
      shardCount: prepared.shardCount,
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
    progress.generation = emptyTally;
    const limits = progress.teacherLimits ?? {};
    const pausedAtStart = progress.paused;
    const child = await startChild(generationWorkflow, {
      workflowId: generationId,
      args: [
        {
          runDir,
          parentWorkflowId: info.workflowId,
          shardCount: prepared.shardCount,
          teacher: { ...spec.teacher, ...(limits.maxInFlight ? { maxInFlight: limits.maxInFlight } : {}), ...(limits.concurrency ? { concurrency: limits.concurrency } : {}) },
          sampling: spec.sampling,
          maxShardsInFlight: limits.maxShardsInFlight ?? spec.generation.maxShardsInFlight,
          cpuQueue: spec.taskQueues.cpu,
          heartbeatSeconds: spec.timeouts.heartbeatSeconds,
          stageHours: spec.timeouts.stageHours,
          nextShard: 0,
          tally: emptyTally,
          maxHistoryEvents: spec.generation.maxHistoryEvents,
          paused: pausedAtStart,
        },
      ],
    });
    // A pause or a limit change that arrived while the child was being started reaches it now.
    if (progress.paused !== pausedAtStart) await child.signal(progress.paused ? pauseSignal : resumeSignal);
    if (progress.teacherLimits && progress.teacherLimits !== limits) await child.signal(teacherLimitsSignal, progress.teacherLimits);
    const tally = await child.result();
    progress.generation = tally;
    // After a budget stop only the first shardsDone shards exist (all started shards are drained first).
    const merged = await cpu.mergeShards({ runDir, shardCount: tally.stoppedByBudget ? tally.shardsDone : prepared.shardCount });
    progress.tokens = { prompt: merged.promptTokens, completion: merged.completionTokens };
    progress.counts.generate = {
      prompts: merged.prompts,
      samples: merged.samples.count,
      requests: tally.requests,
      resumedSamples: tally.resumedSamples,
      shardsDone: tally.shardsDone,
      shardCount: prepared.shardCount,
      costUSD: tally.costUSD,
      stoppedByBudget: tally.stoppedByBudget ? 1 : 0,
    };

    await enter('verify');
    const verified = await cpu.rejectSample({ runDir, samples: merged.samples, verifier: spec.verifier });
    progress.acceptanceRate = verified.acceptanceRate;
    progress.counts.verify = { in: verified.samplesIn, accepted: verified.accepted, rejected: verified.rejected, prompts: verified.prompts, promptsSolved: verified.promptsSolved, ...prefixed('rejected.', verified.reasons) };

    let accepted = verified.acceptedRef;
    if (incremental && spec.incremental.mergeAccepted) {
      const merged = await cpu.mergeLineageAccepted({ runDir, artifactRoot: spec.artifactRoot, lineage, runId: info.workflowId, accepted });
      accepted = merged.accepted;
      progress.counts.merge = { thisRun: merged.fromThisRun, earlierRuns: merged.fromEarlierRuns, duplicatesSkipped: merged.duplicatesSkipped };
      incrementalSummary!.mergedFromEarlierRuns = merged.fromEarlierRuns;
    }

    await enter('filter');
    const filtered = await cpu.formatFilter({ runDir, accepted, filters: spec.filters, passRates: verified.passRatesRef, spec });
    progress.counts.filter = { in: filtered.samplesIn, kept: filtered.kept, rejected: filtered.rejected, ...prefixed('rejected.', filtered.reasons) };
    if (filtered.kept === 0) {
      throw ApplicationFailure.nonRetryable(
        `No sample survived verification and filtering (${verified.accepted} verified, 0 kept): nothing to fine-tune on. See ${filtered.rejectsRef.uri}`,
        'NoTrainingData',
      );
    }

    await enter('finetune');
    let fineTune = spec.fineTune;
    // Start from a promoted student: named in the spec ('promoted:<name>'), or the lineage's own for incremental runs.
    const explicit = fineTune.student.initFrom?.startsWith('promoted:') ? fineTune.student.initFrom.slice('promoted:'.length) : undefined;
    const fromPointer = explicit ?? (incremental && spec.incremental.fromPromoted ? pointerName : undefined);
    if (fromPointer !== undefined && patched('init-from-promoted')) {
      const pointer = await cpu.getPromoted({ artifactRoot: spec.artifactRoot, name: fromPointer });
      if (!pointer && explicit !== undefined) {
        throw ApplicationFailure.nonRetryable(`fineTune.student.initFrom names promoted:${explicit}, but nothing has been promoted under that name`, 'NoPromotedStudent');
      }
      fineTune = { ...fineTune, student: { ...fineTune.student, initFrom: pointer?.modelDir } };
      if (incrementalSummary) incrementalSummary.initFrom = pointer ? { runId: pointer.runId, modelDir: pointer.modelDir } : null;
    }
    // backend 'openai' cannot appear in histories older than this code, so no patch is needed.
    const trained =
      fineTune.backend === 'openai' ? await cpu.openaiFineTune({ runDir, sft: filtered.sftRef, fineTune }) : await gpu.fineTune({ runDir, sft: filtered.sftRef, fineTune, spec, datasetCard: filtered.cardMarkdownRef });
    progress.counts.finetune = { steps: trained.steps, resumedFromStep: trained.resumedFromStep };

    await enter('evaluate');
    const models = evalModels(spec, trained);
    const evaluated = await gpu.evaluate({
      runDir,
      evaluation: spec.evaluation,
      models,
      maxLen: spec.fineTune.model.maxLen,
      benchmarks: spec.evaluation.benchmarks,
      passKs: spec.evaluation.passKs,
      code: spec.verifier.code,
    });
    for (const s of evaluated.scores) progress.counts[`evaluate.${s.name}`] = { pass1: s.pass1.mean, stderr: s.pass1.stderr, samples: s.samples, ...s.outcomes };

    const summary: RunSummary = {
      runId: info.workflowId,
      name: spec.name,
      runDir,
      counts: progress.counts,
      acceptanceRate: verified.acceptanceRate,
      tokens: progress.tokens,
      fineTune: { steps: trained.steps, finalLoss: trained.finalLoss, resumedFromStep: trained.resumedFromStep, modelDir: trained.modelDir },
      evaluation: {
        benchmark: evaluated.benchmark,
        items: evaluated.items,
        k: evaluated.k,
        scores: evaluated.scores.map((s) => ({ name: s.name, pass1: s.pass1.mean, stderr: s.pass1.stderr, samples: s.samples, ...s.outcomes })),
      },
      artifacts: {
        prompts: prepared.prompts,
        quarantine: prepared.quarantine,
        samples: merged.samples,
        accepted: verified.acceptedRef,
        verifyRejects: verified.rejectsRef,
        passRates: verified.passRatesRef,
        sft: filtered.sftRef,
        filterRejects: filtered.rejectsRef,
        trainReport: trained.report,
        evalResults: evaluated.results,
        evalSummary: evaluated.summary,
      },
    };
    // Runs started before the gate and the report existed end without them (replay-safe).
    if (patched('gate-and-report')) {
      const g = spec.evaluation.gate;
      if (g) {
        const decision = await cpu.promote({
          artifactRoot: spec.artifactRoot,
          name: g.name ?? spec.name,
          runId: info.workflowId,
          modelDir: trained.modelDir,
          policy: { primary: g.primary ?? evaluated.benchmark, minImprovement: g.minImprovement, z: g.z, maxRegression: g.maxRegression },
          baseline: scoresByBenchmark(evaluated, 'baseline'),
          candidate: scoresByBenchmark(evaluated, 'student'),
          evaluation: { ...spec.evaluation.benchmark, k: spec.evaluation.k, seed: spec.evaluation.seed },
        });
        summary.gate = decision;
      }
      if (spec.evaluation.report) {
        await enter('report');
        const r = await cpu.writeReport({ runDir, summary, generatedAt: new Date().toISOString() });
        summary.artifacts.reportJson = r.json;
        summary.artifacts.reportMd = r.md;
        summary.artifacts.reportHtml = r.html;
      }
    }
    if (incremental) {
      summary.incremental = incrementalSummary;
      await cpu.recordLineageRun({
        artifactRoot: spec.artifactRoot,
        lineage,
        runId: info.workflowId,
        datasetVersion: prepared.datasetVersion,
        prompts: prepared.kept,
        promptHashes: prepared.promptHashes,
        accepted: verified.acceptedRef,
      });
    }
    await enter('done');
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

/** The student's name for the Web UI's list. */
function studentName(spec: RunSpec): string {
  const ft = spec.fineTune;
  if (ft.backend === 'openai') return ft.openai?.model ?? 'openai';
  if (ft.backend === 'trl') return ft.student.source.split('/').pop()!.replace(/\.gguf$/, '');
  return `tiny-gpt-d${ft.model.dModel}-l${ft.model.nLayer}`;
}

function prefixed(prefix: string, counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).map(([k, v]) => [prefix + k, v]));
}
