import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startTeacherServer } from '../../infra/teacher/server';
import { findTemporalCli } from '../../infra/temporal';
import { lineageRuns } from '../../activities/lineage/lineage';
import { RunSpecSchema } from '../../schemas/run-spec';
import { createSchedule, describeForHumans, listSchedules } from '../../cli/schedules';
import type { RunSummary } from '../../workflows/distillation';
import { startTestTemporal, type TestTemporal } from '../helpers/stack';

/**
 * Nightly distillations on the real dev server: a schedule's runs are incremental over a lineage (only prompts its
 * earlier successful runs have not distilled, by content hash), and start from the student the lineage promoted.
 */
let t: TestTemporal;
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
let dataFile = '';

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  t = await startTestTemporal('schedule');
  teacher = await startTeacherServer({ port: 0 });
  await t.startCpuWorker();
  await t.startGpuWorker();
  dataFile = path.join(t.tmp, 'prompts.jsonl');
});
afterAll(async () => {
  await teacher?.close();
  await t?.close();
});

const row = (i: number, id = `q${i}`) =>
  JSON.stringify({ id, prompt: `Compute ${10 + i}+${30 + 2 * i}.`, answer: String(40 + 3 * i) });
const writeRows = (lines: string[]) => fs.writeFileSync(dataFile, lines.join('\n') + '\n');

const spec = () =>
  RunSpecSchema.parse({
    name: 'nightly',
    dataset: { source: { type: 'jsonl', path: dataFile } },
    teacher: { baseURL: teacher.url, model: 'procedural-arithmetic-teacher' },
    sampling: { n: 2, max_tokens: 200 },
    verifier: { keepPerPrompt: 1 },
    generation: { shardSize: 10, maxShardsInFlight: 2 },
    fineTune: {
      epochs: 1,
      batchSize: 8,
      maxSteps: 3,
      checkpointEvery: 3,
      model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 },
    },
    // A gate that any student at least as good as its baseline passes (no regression allowed): the first run
    // promotes, the next starts from it.
    evaluation: {
      benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 2 },
      k: 1,
      maxNewTokens: 16,
      gate: { minImprovement: 0, maxRegression: 0 },
      report: false,
    },
    timeouts: { heartbeatSeconds: 10 },
    incremental: { mergeAccepted: true },
    artifactRoot: path.join(t.tmp, 'artifacts'),
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for the schedule's nth action and returns that run's result. */
async function nthRun(
  client: Client,
  scheduleId: string,
  n: number,
): Promise<{ workflowId: string; summary: RunSummary }> {
  const handle = client.schedule.getHandle(scheduleId);
  for (let i = 0; i < 600; i++) {
    const d = await handle.describe();
    const recent = d.info.recentActions;
    if (recent.length >= n) {
      const workflowId = recent[n - 1]!.action.workflow.workflowId;
      return { workflowId, summary: (await client.workflow.getHandle(workflowId).result()) as RunSummary };
    }
    await sleep(200);
  }
  throw new Error(`schedule ${scheduleId} never took action ${n}`);
}

test('a triggered schedule runs incrementally: the second run takes only the new prompts and starts from the promoted student', async () => {
  writeRows([...Array(20).keys()].map((i) => row(i)));
  const { scheduleId, spec: scheduled } = await createSchedule(t.client, spec(), {
    scheduleId: 'nightly-test',
    cron: ['0 2 * * *'],
    overlap: 'skip',
    catchupWindow: '1h',
  });
  expect(scheduled.incremental).toMatchObject({
    enabled: true,
    lineage: 'nightly-test',
    fromPromoted: true,
    mergeAccepted: true,
  });
  expect(await scheduleIdsWhen((ids) => ids.includes(scheduleId))).toContain(scheduleId);
  const described = describeForHumans(await t.client.schedule.getHandle(scheduleId).describe());
  expect(described).toMatchObject({
    scheduleId,
    paused: false,
    overlap: 'SKIP',
    catchupWindowMs: 3_600_000,
    runName: 'nightly',
  });

  await t.client.schedule.getHandle(scheduleId).trigger();
  const first = await nthRun(t.client, scheduleId, 1);
  expect(first.workflowId.startsWith(`${scheduleId}-`)).toBe(true);
  expect(first.summary.counts.prepare).toMatchObject({ in: 20, kept: 20, seen: 0 });
  // it promotes because its student is no worse than its baseline, as the scores say (and the gate's checks)
  const [b1, s1] = first.summary.evaluation.scores;
  expect(s1!.pass1).toBeGreaterThanOrEqual(b1!.pass1);
  expect(
    first.summary.gate?.checks
      .filter((ch) => ch.check === 'primary_improvement' || ch.check === 'no_regression')
      .map((ch) => [ch.check, ch.pass]),
  ).toEqual([
    ['primary_improvement', true],
    ['no_regression', true],
  ]);
  expect(first.summary.gate?.promote).toBe(true);
  expect(first.summary.incremental).toMatchObject({
    lineage: scheduleId,
    seen: 0,
    initFrom: null,
    mergedFromEarlierRuns: 0,
  });

  // The nightly data grows: 10 new prompts, and one old prompt again under a new id (the same prompt by content).
  writeRows([...[...Array(30).keys()].map((i) => row(i)), row(3, 'q3-again')]);
  await t.client.schedule.getHandle(scheduleId).trigger();
  const second = await nthRun(t.client, scheduleId, 2);
  expect(second.summary.counts.prepare).toMatchObject({ in: 31, kept: 10, seen: 21 });
  expect(second.summary.counts.generate).toMatchObject({ prompts: 10 });
  const prompts = fs
    .readFileSync(path.join(second.summary.runDir, 'prepare', 'prompts.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).id);
  expect(prompts.sort()).toEqual([...Array(10).keys()].map((i) => `q${20 + i}`).sort());
  expect(second.summary.incremental?.initFrom).toEqual({
    runId: first.workflowId,
    modelDir: first.summary.fineTune.modelDir,
  });
  expect(second.summary.incremental?.mergedFromEarlierRuns).toBe(first.summary.counts.verify!.accepted);
  expect(second.summary.incremental?.datasetVersion).not.toBe(first.summary.incremental?.datasetVersion);
  const config = JSON.parse(fs.readFileSync(path.join(second.summary.runDir, 'finetune', 'config.json'), 'utf8'));
  expect(config.init_from).toBe(first.summary.fineTune.modelDir);

  if (process.env.DISTILLERY_RECORD_HISTORY) {
    const json = execFileSync(findTemporalCli(), [
      'workflow',
      'show',
      '--workflow-id',
      second.workflowId,
      '--address',
      t.server.address,
      '--output',
      'json',
    ]);
    fs.writeFileSync(path.join(__dirname, '..', 'fixtures', 'distillation-history-incremental.json'), json);
  }

  // Nothing new: the third run says so and trains nothing.
  await t.client.schedule.getHandle(scheduleId).trigger();
  const third = await nthRun(t.client, scheduleId, 3);
  expect(third.summary.skipped).toMatch(/no unseen prompts/);
  expect(third.summary.counts.prepare).toMatchObject({ kept: 0, seen: 31 });

  const runs = await lineageRuns(scheduled.artifactRoot, scheduleId);
  expect(runs.map((r) => r.runId)).toEqual([first.workflowId, second.workflowId]);

  // Search attributes make the runs findable in the Web UI's list.
  const found: string[] = [];
  for await (const w of t.client.workflow.list({ query: `DistilleryRunName = "nightly" AND DistilleryStage = "done"` }))
    found.push(w.workflowId);
  expect(found.sort()).toEqual([first.workflowId, second.workflowId, third.workflowId].sort());
  const desc = await t.client.workflow.getHandle(first.workflowId).describe();
  expect(desc.searchAttributes).toMatchObject({
    DistilleryTeacher: ['procedural-arithmetic-teacher'],
    DistilleryStudent: ['tiny-gpt-d32-l1'],
  });

  await t.client.schedule.getHandle(scheduleId).pause('maintenance');
  expect(describeForHumans(await t.client.schedule.getHandle(scheduleId).describe())).toMatchObject({
    paused: true,
    note: 'maintenance',
  });
  await t.client.schedule.getHandle(scheduleId).delete();
  await expect(t.client.schedule.getHandle(scheduleId).describe()).rejects.toThrow(/not found/i);
  expect(await scheduleIdsWhen((ids) => !ids.includes(scheduleId))).not.toContain(scheduleId);
});

/** The schedule list comes from the visibility store, which catches up a moment after a change: ask until `ok`. */
async function scheduleIdsWhen(ok: (ids: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ids = (await listSchedules(t.client)).map((s) => s.scheduleId);
    if (ok(ids) || Date.now() > deadline) return ids;
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a schedule fires on its own interval', async () => {
  writeRows([...Array(5).keys()].map((i) => row(100 + i)));
  const { scheduleId } = await createSchedule(
    t.client,
    { ...spec(), name: 'interval' },
    { scheduleId: 'every-2s', every: ['2s'], overlap: 'skip' },
  );
  const run = await nthRun(t.client, scheduleId, 1);
  await t.client.schedule.getHandle(scheduleId).delete();
  expect(run.summary.counts.prepare).toMatchObject({ kept: 5 });
  const d = await t.client.workflow.getHandle(run.workflowId).describe();
  expect(d.status.name).toBe('COMPLETED');
});

test('worker logs are JSON lines carrying the workflow and activity ids', () => {
  const lines = fs
    .readFileSync(path.join(t.tmp, 'gpu-worker.log'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const steps = lines.filter((l) => l.msg === 'train step');
  expect(steps.length).toBeGreaterThan(0);
  for (const l of steps) {
    expect(l).toMatchObject({ level: 'INFO', activityType: 'fineTune', taskQueue: 'distillery-gpu' });
    expect(String(l.workflowId)).toMatch(/^(nightly-test|every-2s)-/);
    expect(l.activityId).toBeTruthy();
    expect(Date.parse(String(l.ts))).not.toBeNaN();
  }
});
