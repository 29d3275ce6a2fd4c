import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import type { GpuActivities } from '../activities';
import type { IncumbentModel } from '../activities/evaluate/promoted';
import { scoresByBenchmark, type Incumbent } from '../core/gate';
import type { RunSpec } from '../schemas/run-spec';
import { INCUMBENT, promotedStudentOf, type TrainedStudent } from './eval-models';
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
  const explicit = fineTune.student.initFrom?.startsWith('promoted:')
    ? fineTune.student.initFrom.slice('promoted:'.length)
    : undefined;
  const fromPointer = explicit ?? (run.incremental && spec.incremental.fromPromoted ? run.pointerName : undefined);
  if (fromPointer === undefined || !patched('init-from-promoted')) return fineTune;
  const pointer = await run.cpu.getPromoted({ artifactRoot: spec.artifactRoot, name: fromPointer });
  if (!pointer && explicit !== undefined) {
    throw ApplicationFailure.nonRetryable(
      `fineTune.student.initFrom names promoted:${explicit}, but nothing has been promoted under that name`,
      'NoPromotedStudent',
    );
  }
  if (lineageSummary) lineageSummary.initFrom = pointer ? { runId: pointer.runId, modelDir: pointer.modelDir } : null;
  return { ...fineTune, student: { ...fineTune.student, initFrom: pointer?.modelDir } };
}

type Evaluated = Awaited<ReturnType<GpuActivities['evaluate']>>;

/**
 * The gate's incumbent: the model promoted under the run's pointer, read before the evaluation so the evaluate stage
 * scores it on the same items (null: nothing promoted yet). Undefined when the run has no gate, or started before
 * the gate compared with the promoted model (those runs replay as they ran: against their baseline only).
 */
export async function readIncumbent(run: Run): Promise<IncumbentModel | null | undefined> {
  const { spec } = run;
  if (!spec.evaluation.gate || !patched('gate-vs-promoted')) return undefined;
  return run.cpu.readIncumbent({ artifactRoot: spec.artifactRoot, name: run.pointerName });
}

/** The promoted model's scores in this evaluation, for the gate (fail closed when it could not be scored). */
function incumbentScores(incumbent: IncumbentModel | null, evaluated: Evaluated): Incumbent | null {
  if (!incumbent) return null;
  if (incumbent.unavailable) return { runId: incumbent.runId, unavailable: incumbent.unavailable };
  const scores = scoresByBenchmark(evaluated, INCUMBENT);
  return Object.keys(scores).length
    ? { runId: incumbent.runId, scores }
    : { runId: incumbent.runId, unavailable: 'the evaluation returned no score for it' };
}

/**
 * The promotion gate (when the spec has one) and the report, in that order: the report shows the gate's decision.
 * With an incumbent read (`readIncumbent`), the candidate must beat its baseline and be at least as good as the
 * promoted model (core/gate.ts: decidePromotion), and the pointer moves only if it still names that incumbent.
 */
export async function gateAndReport(
  run: Run,
  control: RunControl,
  summary: RunSummary,
  trained: TrainedStudent,
  evaluated: Evaluated,
  incumbent: IncumbentModel | null | undefined,
): Promise<void> {
  // Runs started before the gate and the report existed end without them (replay-safe).
  if (!patched('gate-and-report')) return;
  const { spec, cpu } = run;
  const g = spec.evaluation.gate;
  if (g) {
    const againstIncumbent =
      incumbent === undefined
        ? {}
        : {
            incumbent: incumbentScores(incumbent, evaluated),
            expectPrevious: incumbent?.runId ?? null,
            student: promotedStudentOf(spec, trained),
          };
    try {
      summary.gate = await cpu.promote({
        artifactRoot: spec.artifactRoot,
        name: run.pointerName,
        runId: run.workflowId,
        modelDir: trained.modelDir,
        policy: {
          primary: g.primary ?? evaluated.benchmark,
          minImprovement: g.minImprovement,
          z: g.z,
          maxRegression: g.maxRegression,
        },
        baseline: scoresByBenchmark(evaluated, 'baseline'),
        candidate: scoresByBenchmark(evaluated, 'student'),
        evaluation: { ...spec.evaluation.benchmark, k: spec.evaluation.k, seed: spec.evaluation.seed },
        ...againstIncumbent,
      });
    } catch (err) {
      // Another run promoted after this one read the pointer: fail the run under the conflict's own name.
      if (
        err instanceof ActivityFailure &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === 'PromotionConflict'
      ) {
        throw ApplicationFailure.nonRetryable(err.cause.message, 'PromotionConflict');
      }
      throw err;
    }
  }
  if (spec.evaluation.report) {
    await control.enter('report');
    const r = await cpu.writeReport({ runDir: summary.runDir, summary, generatedAt: new Date().toISOString() });
    summary.artifacts.reportJson = r.json;
    summary.artifacts.reportMd = r.md;
    summary.artifacts.reportHtml = r.html;
  }
}
