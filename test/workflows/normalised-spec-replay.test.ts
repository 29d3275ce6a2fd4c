import { randomUUID } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { workflowBundlePath } from '../../workers/build-bundle';
import { progressQuery } from '../../workflows/messages';
import { stubActivities } from './stub-activities';
import { startStubEnv, stubSpec, type StubEnv } from './stub-env';
import { bundleWithReplacedText } from './replace-text-bundle';

/**
 * A running workflow must not change its commands when a default of the run-spec schema changes under it. The spec
 * is normalised once and recorded in history; here a history is recorded with today's schema, then replayed against
 * the same workflow code bundled with `evaluation.report` defaulting to false instead of true (a loader rewrites that
 * one line of schemas/run-spec.ts). The replay must issue the same commands, writeReport included. (A workflow that
 * parsed the raw input again on replay would find no report wanted and fail with a nondeterminism error.)
 */
let s: StubEnv;
beforeAll(async () => {
  s = await startStubEnv('normalised-spec');
});
afterAll(async () => s?.close());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DEFAULT_TODAY = 'report: z.boolean().default(true)';
const DEFAULT_TOMORROW = 'report: z.boolean().default(false)';

const bundleWithChangedDefault = () =>
  bundleWithReplacedText(/[\\/]schemas[\\/]run-spec\.ts$/, DEFAULT_TODAY, DEFAULT_TOMORROW);

test('a history recorded under one schema default replays with the same commands after the default changed', async () => {
  // The spec leaves evaluation.report out: today's default (true) decides that the run writes a report.
  const spec = stubSpec('defaults', s.taskQueue, s.artifactRoot, {
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 10, seed: 2 }, k: 1 },
  });
  const today = stubActivities({ scores: { baseline: 0.1, student: 0.5 } });
  s.use(today.activities);
  const workflowId = `defaults-${randomUUID()}`;
  await s.env.client.workflow.execute('distillationWorkflow', { taskQueue: s.taskQueue, workflowId, args: [spec] });
  expect(today.called('writeReport')).toHaveLength(1);
  const history = await s.env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = history
    .events!.filter((e) => e.activityTaskScheduledEventAttributes)
    .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
  expect(scheduled).toContain('writeReport');

  const tomorrow = await bundleWithChangedDefault();

  // The bundle really carries tomorrow's default (the loader also fails the bundle when the text is not there).
  expect(/report: [\w.]+\.boolean\(\)\.default\(false\)/.test(tomorrow)).toBe(true);
  expect(/report: [\w.]+\.boolean\(\)\.default\(true\)/.test(tomorrow)).toBe(false);

  // The run recorded under today's default replays on tomorrow's code: same commands, the report included.
  await expect(
    Worker.runReplayHistory({ workflowBundle: { code: tomorrow } }, history, workflowId),
  ).resolves.toBeUndefined();
});

test('a normalisation slower than a workflow task is an activity of its own: recorded once, replayed from history', async () => {
  const stubs = stubActivities({ kept: 10 });
  const normalise = stubs.activities.normaliseRunSpec;
  let calls = 0;
  stubs.activities.normaliseRunSpec = async (input) => {
    calls += 1;
    await sleep(6500);
    return normalise(input);
  };
  s.use(stubs.activities);
  const workflowId = `slow-spec-${randomUUID()}`;
  // A local activity this slow outlives the 5 s workflow task; one that completes just as the task is being
  // heartbeated cannot be replayed by this SDK. An ordinary activity has no such race.
  const handle = await s.env.client.workflow.start('distillationWorkflow', {
    taskQueue: s.taskQueue,
    workflowId,
    workflowTaskTimeout: '5s',
    args: [stubSpec('slow-spec', s.taskQueue, s.artifactRoot)],
  });
  await handle.result();
  const history = await handle.fetchHistory();
  const events = history.events!;
  const scheduled = events.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'normaliseRunSpec',
  );
  expect(scheduled).toHaveLength(1);
  expect(scheduled[0]!.activityTaskScheduledEventAttributes!.taskQueue?.name).toBe(s.taskQueue);
  expect(events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity')).toHaveLength(0);
  expect(calls).toBe(1);
  await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, workflowId);
  expect((await handle.query(progressQuery)).stage).toBe('done'); // a query on a closed run replays it too
  expect(calls).toBe(1);
});
