import { ApplicationFailure, patched, proxyLocalActivities } from '@temporalio/workflow';
import type { WorkflowActivities } from '../activities';
import { checkRunSpec, describeSpecIssues, type RunSpec, type SpecCheck } from '../schemas/run-spec';

// Pure and quick: it fails only on a bug or a worker without it, which a deployment fixes, so it retries until then.
const { normaliseRunSpec } = proxyLocalActivities<WorkflowActivities>({ startToCloseTimeout: '30 seconds' });

/**
 * The run's spec, normalised once and recorded in history (a local activity's result is a marker): replays and
 * newer workers keep the defaults the run started with. Runs that started before this parsed the raw input in the
 * workflow on every replay, and still do. A bad spec fails at once, non-retryably, naming every bad field.
 */
export async function runSpecOf(input: unknown): Promise<RunSpec> {
  const checked: SpecCheck = patched('normalised-run-spec') ? await normaliseRunSpec(input) : checkRunSpec(input);
  if (!checked.ok) throw ApplicationFailure.nonRetryable(describeSpecIssues(checked.issues), 'InvalidRunSpec', { issues: checked.issues });
  return checked.spec;
}
