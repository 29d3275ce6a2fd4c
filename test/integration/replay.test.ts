import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workflowBundlePath } from '../../workers/build-bundle';

/**
 * Determinism guard: a history recorded from a real run (test/fixtures; re-record with
 * `DISTILLERY_RECORD_HISTORY=1 npx jest test/integration/pipeline.test.ts -t "Web UI"`) must replay against
 * today's workflow code. A change that would break runs in flight fails here; it needs `patched()` or a new
 * workflow type, not a new fixture.
 */
interface HistoryJson {
  events: { eventType: string; startChildWorkflowExecutionInitiatedEventAttributes?: { workflowId: string } }[];
}

beforeAll(() => Runtime.install({ logger: new DefaultLogger('WARN') }));

test('a recorded distillation history replays without nondeterminism', async () => {
  const history = JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'distillation-history.json'), 'utf8')) as HistoryJson;
  expect(history.events.length).toBeGreaterThan(20);
  // The replayer needs the original workflow id: the generation child's id is derived from it.
  const child = history.events.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)!;
  const workflowId = child.startChildWorkflowExecutionInitiatedEventAttributes!.workflowId.replace(/-generate$/, '');
  await expect(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, workflowId)).resolves.toBeUndefined();
});
