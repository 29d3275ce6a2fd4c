import { ApplicationFailure, patched, proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { WorkflowActivities } from '../activities';
import { checkRunSpec, describeSpecIssues, type RunSpec, type SpecCheck } from '../schemas/run-spec';

// Pure and quick: it fails only on a bug or a worker without it, which a deployment fixes, so it retries until then.
const { normaliseRunSpec: normaliseLocally } = proxyLocalActivities<WorkflowActivities>({
  startToCloseTimeout: '30 seconds',
});

/**
 * The run's spec, normalised once and recorded in history: replays and newer workers keep the defaults the run
 * started with. It is an ordinary activity on the workflow's own task queue (the workflow worker runs it): a local
 * activity whose result lands in one workflow task while the code after it ran in the next cannot be replayed by
 * this SDK (the patches after it are reported as nondeterminism), and a loaded worker makes that race likely. Runs
 * that started with the local activity, or before any normalisation (they parse the raw input on every replay),
 * replay as they ran. A bad spec fails at once, non-retryably, naming every bad field.
 */
export async function runSpecOf(input: unknown): Promise<RunSpec> {
  const checked: SpecCheck = patched('spec-normalised-by-activity')
    ? await normaliseByActivity(input)
    : patched('normalised-run-spec')
      ? await normaliseLocally(input)
      : checkRunSpec(input);
  if (!checked.ok)
    throw ApplicationFailure.nonRetryable(describeSpecIssues(checked.issues), 'InvalidRunSpec', {
      issues: checked.issues,
    });
  return checked.spec;
}

function normaliseByActivity(input: unknown): Promise<SpecCheck> {
  const { normaliseRunSpec } = proxyActivities<WorkflowActivities>({
    taskQueue: workflowInfo().taskQueue,
    startToCloseTimeout: '1 minute',
    retry: { maximumInterval: '30 seconds' },
  });
  return normaliseRunSpec(input);
}
