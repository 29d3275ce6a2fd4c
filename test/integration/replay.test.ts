import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workflowBundlePath } from '../../workers/build-bundle';

/**
 * Determinism guard: histories recorded from real runs (test/fixtures: a plain run, re-recorded with
 * `DISTILLERY_RECORD_HISTORY=1 npx jest test/integration/pipeline.test.ts -t "Web UI"`; an incremental scheduled run
 * that starts from a promoted student, with `DISTILLERY_RECORD_HISTORY=1 npx jest test/integration/schedule.test.ts`; a run mixing two sources, with
 * `DISTILLERY_RECORD_HISTORY=1 npx jest test/integration/mixture.test.ts`) must replay against
 * today's workflow code. A change that would break runs in flight fails here; it needs `patched()` or a new
 * workflow type, not a new fixture.
 */
interface HistoryJson {
  events: { eventType: string; startChildWorkflowExecutionInitiatedEventAttributes?: { workflowId: string } }[];
}

beforeAll(() => Runtime.install({ logger: new DefaultLogger('WARN') }));

const fixtures = readdirSync(path.join(__dirname, '..', 'fixtures')).filter((f) =>
  /^distillation-history.*\.json$/.test(f),
);

test.each(fixtures)('a recorded distillation history (%s) replays without nondeterminism', async (fixture) => {
  const history = JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', fixture), 'utf8')) as HistoryJson;
  expect(history.events.length).toBeGreaterThan(20);
  // The replayer needs the original workflow id: the generation child's id is derived from it.
  const child = history.events.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)!;
  const workflowId = child.startChildWorkflowExecutionInitiatedEventAttributes!.workflowId.replace(/-generate$/, '');
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, workflowId),
  ).resolves.toBeUndefined();
});
