import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { workflowBundlePath } from '../../workers/build-bundle';

/**
 * Determinism guard: a history recorded from a real run (test/fixtures, recorded by the pipeline test with
 * DISTILLERY_RECORD_HISTORY=1) must replay against today's workflow code. A change that would break runs in flight
 * fails here; such a change needs `patched()` or a new workflow type.
 */
test('a recorded distillation history replays without nondeterminism', async () => {
  const json = readFileSync(path.join(__dirname, '..', 'fixtures', 'distillation-history.json'), 'utf8');
  const history = historyFromJSON(JSON.parse(json));
  expect(history.events!.length).toBeGreaterThan(20);
  await expect(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, 'recorded-distillation')).resolves.toBeUndefined();
});
