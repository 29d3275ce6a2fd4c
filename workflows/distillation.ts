import { CancellationScope, isCancellation } from '@temporalio/workflow';
import { generate } from './generation-stage';
import { fineTuneFrom, gateAndReport, readIncumbent } from './promotion';
import { installRunControl } from './run-control';
import { openRun } from './run-context';
import { runSpecOf } from './run-spec';
import { acceptedToFilter, evaluate, filter, fineTune, prepare, recordLineage, verify } from './stages';
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
  const { cpu, incremental, lineage } = run;

  await control.enter('prepare');
  const prepared = await prepare(run, progress);
  const { runDir } = prepared;
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
    const verified = await verify(run, progress, runDir, merged);
    const accepted = await acceptedToFilter(run, progress, runDir, verified, lineageSummary);

    await control.enter('filter');
    const filtered = await filter(run, progress, runDir, accepted, verified);

    await control.enter('finetune');
    const trained = await fineTune(run, progress, runDir, await fineTuneFrom(run, lineageSummary), filtered);

    await control.enter('evaluate');
    const incumbent = await readIncumbent(run);
    const evaluated = await evaluate(run, progress, runDir, trained, incumbent);
    const summary = buildSummary(run, progress, { prepared, merged, verified, filtered, trained, evaluated });
    await gateAndReport(run, control, summary, trained, evaluated, incumbent);

    if (incremental) {
      summary.incremental = lineageSummary;
      await recordLineage(run, prepared, verified);
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
