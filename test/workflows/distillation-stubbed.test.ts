import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { readPromoted, writePromoted } from '../../activities/evaluate/promoted';
import { workflowBundlePath } from '../../workers/build-bundle';
import {
  progressQuery,
  pauseSignal,
  resumeSignal,
  setTeacherLimitsUpdate,
  type RunProgress,
} from '../../workflows/messages';
import type { RunSummary } from '../../workflows/distillation';
import { shardValve, stubActivities } from './stub-activities';
import { startStubEnv, stubSpec, type StubEnv } from './stub-env';

/**
 * The distillation workflow's orchestration on a real dev server with stub activities (test doubles of the stages,
 * see stub-activities.ts): pause/resume, the teacher-limits update, the budget stop, the generation child's
 * continue-as-new, the incremental skip, and the promotion gate against the promoted model. The real stages are
 * covered by test/integration; here a run takes about a second.
 */
let s: StubEnv;
const started = Date.now();
beforeAll(async () => {
  s = await startStubEnv('stubbed');
  console.log(`dev server and worker up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
afterAll(async () => {
  await s?.close();
  console.log(`stub-activity workflow tests: ${((Date.now() - started) / 1000).toFixed(1)} s including the dev server`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, get: () => Promise<T> | T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms} ms (last: ${JSON.stringify(v)})`);
    await sleep(25);
  }
}
const progressOf = (h: WorkflowHandle) => h.query<RunProgress>(progressQuery);
/** Runs one distillation on the stubs to its end (its result, or the error it failed with). */
async function run(
  stubs: ReturnType<typeof stubActivities>,
  opts: { workflowId: string; args: unknown[] },
): Promise<RunSummary> {
  s.use(stubs.activities);
  return (await s.env.client.workflow.execute('distillationWorkflow', {
    taskQueue: s.taskQueue,
    ...opts,
  })) as RunSummary;
}

/** A teacher priced at $1 per 1M tokens with a budget. */
const pricedTeacher = (budgetUSD: number) => ({
  baseURL: 'http://127.0.0.1:9/v1',
  model: 'stub-teacher',
  pricing: { inputPerMTokens: 1, outputPerMTokens: 1 },
  budgetUSD,
});

/** An adaptive run within a budget, two shards in flight, each costing `shardUSD` and held until the valve lets it end. */
async function startBudgetedAdaptive(name: string, budgetUSD: number, shardUSD: number) {
  const valve = shardValve();
  const tokens = shardUSD * 500_000;
  const stubs = stubActivities({
    kept: 40,
    shardTokens: { prompt: tokens, completion: tokens },
    beforeShardDone: valve.beforeShardDone,
  });
  s.use(stubs.activities);
  const handle = await s.env.client.workflow.start('distillationWorkflow', {
    taskQueue: s.taskQueue,
    workflowId: `${name}-${randomUUID()}`,
    args: [
      stubSpec(name, s.taskQueue, s.artifactRoot, {
        teacher: pricedTeacher(budgetUSD),
        sampling: { adaptive: {} },
        generation: { shardSize: 10, maxShardsInFlight: 2 },
      }),
    ],
  });
  return { valve, stubs, handle };
}

test('pause holds new shards, setTeacherLimits changes the limits (valid ones only), resume finishes with every shard once', async () => {
  const valve = shardValve();
  const stubs = stubActivities({ kept: 40, beforeShardDone: valve.beforeShardDone });
  let releaseEvaluate!: () => void;
  const evaluateHeld = new Promise<void>((r) => (releaseEvaluate = r));
  stubs.activities.evaluate = ((orig) => async (input) => {
    await evaluateHeld;
    return orig(input);
  })(stubs.activities.evaluate);
  s.use(stubs.activities);
  {
    const taskQueue = s.taskQueue;
    const handle = await s.env.client.workflow.start('distillationWorkflow', {
      taskQueue,
      workflowId: `pause-${randomUUID()}`,
      args: [stubSpec('pause', taskQueue, s.artifactRoot)],
    });
    await until(
      'first shard started',
      () => valve.started.length,
      (n) => n === 1,
    );
    await handle.signal(pauseSignal);
    await until(
      'paused',
      () => progressOf(handle),
      (p) => p.paused,
    );
    valve.release(1);
    await until(
      'first shard reported',
      () => progressOf(handle),
      (p) => p.generation?.shardsDone === 1,
    );
    await sleep(500);
    expect(valve.started).toEqual([0]); // paused: no new shard in half a second

    const limits = await handle.executeUpdate(setTeacherLimitsUpdate, {
      args: [{ maxShardsInFlight: 3, maxInFlight: 16 }],
    });
    expect(limits).toEqual({ maxShardsInFlight: 3, maxInFlight: 16 });
    await expect(handle.executeUpdate(setTeacherLimitsUpdate, { args: [{ maxInFlight: 0 }] })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/maxInFlight must be a positive integer/) },
    });
    await expect(handle.executeUpdate(setTeacherLimitsUpdate, { args: [{ lanes: 2 } as never] })).rejects.toMatchObject(
      { cause: { message: expect.stringMatching(/unknown limit lanes/) } },
    );

    await handle.signal(resumeSignal);
    // The three remaining shards run at once under the new limit (one at a time before it).
    await until(
      'three shards in flight',
      () => valve.waiting(),
      (n) => n === 3,
    );
    valve.release(3);
    await until(
      'evaluate stage',
      () => progressOf(handle),
      (p) => p.stage === 'evaluate',
    );
    await expect(handle.executeUpdate(setTeacherLimitsUpdate, { args: [{ concurrency: 4 }] })).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/generation is over \(stage evaluate\)/) },
    });
    releaseEvaluate();
    const summary = (await handle.result()) as RunSummary;
    expect(summary.counts.generate).toMatchObject({ shardsDone: 4, shardCount: 4, prompts: 40 });
    const shards = stubs
      .called('generateShard')
      .map((c) => c.input as { shardIndex: number; teacher: { maxInFlight: number } });
    expect(shards.map((c) => c.shardIndex).sort()).toEqual([0, 1, 2, 3]);
    expect(shards.map((c) => c.teacher.maxInFlight)).toEqual([64, 16, 16, 16]);
    expect((await progressOf(handle)).teacherLimits).toEqual({ maxShardsInFlight: 3, maxInFlight: 16 });
  }
});

test('a spent budget stops new shards; the finished ones go on through the pipeline', async () => {
  // $1 per shard (0.5M prompt + 0.5M completion tokens at $1 per 1M), budget $2.50: the third shard crosses it.
  const stubs = stubActivities({ kept: 100, shardTokens: { prompt: 500_000, completion: 500_000 } });
  const summary = await run(stubs, {
    workflowId: `budget-${randomUUID()}`,
    args: [stubSpec('budget', s.taskQueue, s.artifactRoot, { teacher: pricedTeacher(2.5) })],
  });
  expect(stubs.called('generateShard')).toHaveLength(3);
  expect(stubs.called('mergeShards').map((c) => c.input)).toEqual([expect.objectContaining({ shardCount: 3 })]);
  expect(summary.counts.generate).toMatchObject({ shardsDone: 3, shardCount: 10, stoppedByBudget: 1, costUSD: 3 });
  expect(stubs.called('fineTune')).toHaveLength(1);
});

test('with adaptive sampling each shard gets a share of what is left of the budget, less the shares still held', async () => {
  // $0.10 per shard, $2 over 4 shards, two in flight, finished one at a time (the valve).
  const { valve, stubs, handle } = await startBudgetedAdaptive('budget-share', 2, 0.1);
  for (const started of [2, 3, 4]) {
    await until(
      'shards started',
      () => valve.started.length,
      (n) => n === started,
    );
    valve.release(1);
  }
  valve.release(1);
  const summary = (await handle.result()) as RunSummary;
  const shares = stubs
    .called('generateShard')
    .map((c) => c.input as { shardIndex: number; budget?: { shareUSD: number; usdPerSample?: number } })
    .sort((a, b) => a.shardIndex - b.shardIndex)
    .map((i) => i.budget);
  // shard 0: 2/4; shard 1: (2 − 0.5 held)/3; shard 2: (2 − 0.1 spent − 0.5 held)/2; shard 3: (2 − 0.2 − 0.7)/1
  expect(shares).toHaveLength(4);
  [0.5, 0.5, 0.7, 1.1].forEach((want, i) => expect(shares[i]!.shareUSD).toBeCloseTo(want, 9));
  // Once a shard has finished, the run's cost per sample so far ($0.10 per 20 samples) prices a first round.
  expect(shares.map((x) => x!.usdPerSample)).toEqual([undefined, undefined, 0.1 / 20, 0.1 / 20]);
  expect(summary.counts.generate).toMatchObject({ shardsDone: 4, shardCount: 4 });

  // Without adaptive sampling a shard is never given a share (the budget is checked between shards only).
  const fixed = stubActivities({ kept: 40, shardTokens: { prompt: 50_000, completion: 50_000 } });
  await run(fixed, {
    workflowId: `budget-fixed-${randomUUID()}`,
    args: [stubSpec('budget-fixed', s.taskQueue, s.artifactRoot, { teacher: pricedTeacher(2) })],
  });
  expect(fixed.called('generateShard').map((c) => (c.input as { budget?: unknown }).budget)).toEqual([
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
});

test('with nothing left to share out, no shard starts: it waits for those in flight, then stops for the budget', async () => {
  // $0.80 per shard (a shard that overshoots its share), $1 over 4 shards, two in flight.
  const { valve, stubs, handle } = await startBudgetedAdaptive('budget-none-left', 1, 0.8);
  await until(
    'two shards started',
    () => valve.started.length,
    (n) => n === 2,
  );
  valve.release(1);
  await until(
    'one shard reported',
    () => progressOf(handle),
    (p) => p.generation?.shardsDone === 1,
  );
  // $0.80 spent and $0.25 held by the shard in flight: a third shard would get nothing, so it does not start.
  await sleep(500);
  expect(valve.started).toHaveLength(2);
  valve.release(1);
  const summary = (await handle.result()) as RunSummary;
  expect(stubs.called('generateShard')).toHaveLength(2);
  expect(summary.counts.generate).toMatchObject({ shardsDone: 2, shardCount: 4, stoppedByBudget: 1 });
});

test('the generation child continues as new when its history fills, and runs every shard exactly once', async () => {
  const stubs = stubActivities({ kept: 50 });
  const workflowId = `can-${randomUUID()}`;
  const generation = { shardSize: 10, maxShardsInFlight: 2, maxHistoryEvents: 20 };
  const summary = await run(stubs, {
    workflowId,
    args: [stubSpec('can', s.taskQueue, s.artifactRoot, { generation })],
  });
  const shards = stubs.called('generateShard').map((c) => (c.input as { shardIndex: number }).shardIndex);
  expect(shards.sort((a, b) => a - b)).toEqual([...Array(5).keys()]);
  expect(summary.counts.generate).toMatchObject({ shardsDone: 5, prompts: 50 });
  // Walk the child's chain of runs back from the last one: each was continued from the one before.
  let runs = 1;
  let history = await s.env.client.workflow.getHandle(`${workflowId}-generate`).fetchHistory();
  for (;;) {
    const from = history.events![0]!.workflowExecutionStartedEventAttributes!.continuedExecutionRunId;
    if (!from) break;
    runs += 1;
    history = await s.env.client.workflow.getHandle(`${workflowId}-generate`, from).fetchHistory();
    expect(history.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  }
  expect(runs).toBeGreaterThan(1);
});

test('an incremental run with no unseen prompt ends at once with `skipped`, training nothing', async () => {
  const stubs = stubActivities({ kept: 0, seen: 40 });
  const summary = await run(stubs, {
    workflowId: `skip-${randomUUID()}`,
    args: [stubSpec('skip', s.taskQueue, s.artifactRoot, { incremental: { enabled: true } })],
  });
  expect(summary.skipped).toMatch(
    /no unseen prompts: all 40 usable rows were distilled by earlier runs of lineage skip/,
  );
  expect(summary.counts.prepare).toMatchObject({ kept: 0, seen: 40 });
  expect(summary).toMatchObject({
    acceptanceRate: 0,
    fineTune: { steps: 0, modelDir: '' },
    evaluation: { items: 0, scores: [] },
    incremental: { lineage: 'skip', seen: 40 },
  });
  expect(Object.keys(summary.artifacts).sort()).toEqual(['prompts', 'quarantine']);
  expect(stubs.calls.map((c) => c.name)).toEqual(['normaliseRunSpec', 'prepareDataset']);
});

test('an invalid spec fails at once, non-retryably, as InvalidRunSpec naming every bad field; nothing is scheduled', async () => {
  const stubs = stubActivities();
  const bad = {
    ...stubSpec('bad spec!', s.taskQueue, s.artifactRoot),
    sampling: { n: 0, temperature: 7 },
    teacher: { baseURL: 'not a url', model: '' },
  };
  const workflowId = `invalid-${randomUUID()}`;
  const err = await run(stubs, { workflowId, args: [bad] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toMatchObject({ type: 'InvalidRunSpec', nonRetryable: true });
  for (const field of ['name', 'teacher.baseURL', 'teacher.model', 'sampling.n', 'sampling.temperature'])
    expect(cause.message).toContain(`- ${field}:`);
  // The spec was checked once, by the activity whose answer history keeps; no stage was scheduled.
  expect(stubs.calls.map((c) => c.name)).toEqual(['normaliseRunSpec']);
  const history = await s.env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  expect(scheduled).toEqual(['normaliseRunSpec']);
});

describe('the promotion gate against the promoted model', () => {
  const gated = (name: string, line: string) =>
    stubSpec(name, s.taskQueue, s.artifactRoot, {
      evaluation: {
        benchmark: { type: 'builtin', task: 'arithmetic', count: 10, seed: 2 },
        k: 1,
        report: false,
        gate: { name: line, minImprovement: 0.05, maxRegression: 0.02 },
      },
    });
  /** A promoted model on disk (the pointer's modelDir holds model.onnx, as a tiny student's does). */
  const promoted = async (line: string, runId: string) => {
    const modelDir = path.join(s.artifactRoot, 'models', runId);
    mkdirSync(modelDir, { recursive: true });
    writeFileSync(path.join(modelDir, 'model.onnx'), 'stub');
    await writePromoted(s.artifactRoot, { name: line, runId, modelDir, scores: {}, student: { kind: 'tiny' } });
    return modelDir;
  };
  const replay = async (workflowId: string) => {
    const history = await s.env.client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, workflowId);
  };

  test('nothing promoted yet: a student that beats its baseline promotes, and the pointer records how to serve it', async () => {
    const stubs = stubActivities({ scores: { baseline: 0.1, student: 0.6 } });
    const workflowId = `first-${randomUUID()}`;
    const summary = await run(stubs, { workflowId, args: [gated('first', 'line-a')] });
    expect(summary.gate).toMatchObject({ promote: true });
    expect((stubs.called('evaluate')[0]!.input as { models: { name: string }[] }).models.map((m) => m.name)).toEqual([
      'baseline',
      'student',
    ]);
    expect(await readPromoted(s.artifactRoot, 'line-a')).toMatchObject({
      runId: workflowId,
      modelDir: summary.fineTune.modelDir,
      student: { kind: 'tiny' },
      previous: null,
    });
    await replay(workflowId);
  });

  test('a student weaker than the promoted one does not take the pointer, though it beats its own baseline', async () => {
    const strongDir = await promoted('line-b', 'strong');
    const stubs = stubActivities({ scores: { baseline: 0.1, student: 0.4, promoted: 0.6 } });
    const workflowId = `weak-${randomUUID()}`;
    const summary = await run(stubs, { workflowId, args: [gated('weak', 'line-b')] });
    // The promoted model was scored in the same evaluate call, served as what it is.
    expect((stubs.called('evaluate')[0]!.input as { models: unknown[] }).models).toContainEqual({
      name: 'promoted',
      dir: strongDir,
    });
    expect(summary.evaluation.scores.map((x) => x.name)).toEqual(['baseline', 'student', 'promoted']);
    expect(summary.gate!.promote).toBe(false);
    expect(summary.gate!.checks.filter((c) => !c.pass).map((c) => `${c.against}:${c.check}`)).toEqual([
      'promoted:primary_improvement',
      'promoted:no_regression',
    ]);
    expect((await readPromoted(s.artifactRoot, 'line-b'))!.runId).toBe('strong');

    // A stronger one does, and the pointer remembers the one it replaced.
    const better = stubActivities({ scores: { baseline: 0.1, student: 0.7, promoted: 0.6 } });
    const betterId = `better-${randomUUID()}`;
    expect((await run(better, { workflowId: betterId, args: [gated('better', 'line-b')] })).gate!.promote).toBe(true);
    expect(await readPromoted(s.artifactRoot, 'line-b')).toMatchObject({
      runId: betterId,
      previous: { runId: 'strong' },
    });
    await replay(workflowId);
  });

  test('another run promotes while this one evaluates: the compare-and-swap refuses, the run fails with PromotionConflict', async () => {
    await promoted('line-c', 'strong');
    const stubs = stubActivities({
      scores: { baseline: 0.1, student: 0.9, promoted: 0.6 },
      duringEvaluate: async () => void (await promoted('line-c', 'intruder')),
    });
    const workflowId = `conflict-${randomUUID()}`;
    const err = await run(stubs, { workflowId, args: [gated('conflict', 'line-c')] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({
      type: 'PromotionConflict',
      nonRetryable: true,
      message: expect.stringMatching(/promoted by intruder meanwhile \(expected strong\)/),
    });
    expect(stubs.called('promote')).toHaveLength(1); // not retried
    expect((await readPromoted(s.artifactRoot, 'line-c'))!.runId).toBe('intruder');
  });

  test('a promoted model that cannot be scored (its files are gone) fails the gate closed', async () => {
    await writePromoted(s.artifactRoot, {
      name: 'line-d',
      runId: 'vanished',
      modelDir: path.join(s.artifactRoot, 'nowhere'),
      scores: {},
      student: { kind: 'tiny' },
    });
    const stubs = stubActivities({ scores: { baseline: 0.1, student: 0.9 } });
    const summary = await run(stubs, { workflowId: `gone-${randomUUID()}`, args: [gated('gone', 'line-d')] });
    expect(summary.gate!.promote).toBe(false);
    expect(summary.gate!.reasons.join('\n')).toMatch(
      /FAIL vs promoted vanished: it could not be scored on these items \(.*model\.onnx does not exist\)/,
    );
    expect((await readPromoted(s.artifactRoot, 'line-d'))!.runId).toBe('vanished');
  });
});
