import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { GpuActivities } from '../activities';
import { scoresByBenchmark } from '../core/gate';
import type { RunSpec } from '../schemas/run-spec';
import type { RunControl } from './run-control';
import type { Run } from './run-context';
import type { RunSummary } from './summary';

/**
 * Where fine-tuning starts: a promoted student named in the spec ('promoted:<name>'), the lineage's own promoted
 * student for incremental runs with `fromPromoted`, or the spec's student.
 */
export async function fineTuneFrom(run: Run, lineageSummary: RunSummary['incremental']): Promise<RunSpec['fineTune']> {
  const { spec } = run;
  const fineTune = spec.fineTune;
  const explicit = fineTune.student.initFrom?.startsWith('promoted:') ? fineTune.student.initFrom.slice('promoted:'.length) : undefined;
  const fromPointer = explicit ?? (run.incremental && spec.incremental.fromPromoted ? run.pointerName : undefined);
  if (fromPointer === undefined || !patched('init-from-promoted')) return fineTune;
  const pointer = await run.cpu.getPromoted({ artifactRoot: spec.artifactRoot, name: fromPointer });
  if (!pointer && explicit !== undefined) {
    throw ApplicationFailure.nonRetryable(`fineTune.student.initFrom names promoted:${explicit}, but nothing has been promoted under that name`, 'NoPromotedStudent');
  }
  if (lineageSummary) lineageSummary.initFrom = pointer ? { runId: pointer.runId, modelDir: pointer.modelDir } : null;
  return { ...fineTune, student: { ...fineTune.student, initFrom: pointer?.modelDir } };
}

type Evaluated = Awaited<ReturnType<GpuActivities['evaluate']>>;

/** The promotion gate (when the spec has one) and the report, in that order: the report shows the gate's decision. */
export async function gateAndReport(run: Run, control: RunControl, summary: RunSummary, trained: { modelDir: string }, evaluated: Evaluated): Promise<void> {
  // Runs started before the gate and the report existed end without them (replay-safe).
  if (!patched('gate-and-report')) return;
  const { spec, cpu } = run;
  const g = spec.evaluation.gate;
  if (g) {
    summary.gate = await cpu.promote({
      artifactRoot: spec.artifactRoot,
      name: run.pointerName,
      runId: run.workflowId,
      modelDir: trained.modelDir,
      policy: { primary: g.primary ?? evaluated.benchmark, minImprovement: g.minImprovement, z: g.z, maxRegression: g.maxRegression },
      baseline: scoresByBenchmark(evaluated, 'baseline'),
      candidate: scoresByBenchmark(evaluated, 'student'),
      evaluation: { ...spec.evaluation.benchmark, k: spec.evaluation.k, seed: spec.evaluation.seed },
    });
  }
  if (spec.evaluation.report) {
    await control.enter('report');
    const r = await cpu.writeReport({ runDir: summary.runDir, summary, generatedAt: new Date().toISOString() });
    summary.artifacts.reportJson = r.json;
    summary.artifacts.reportMd = r.md;
    summary.artifacts.reportHtml = r.html;
  }
}
