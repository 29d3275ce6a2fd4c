import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startTeacherServer } from '../../infra/teacher/server';
import {
  pauseSignal,
  progressQuery,
  resumeSignal,
  setTeacherLimitsUpdate,
  type RunProgress,
} from '../../workflows/messages';
import type { RunSummary } from '../../workflows/distillation';
import { startTestTemporal, type TestTemporal } from '../helpers/stack';

/** Control of a running distillation, the way the Web UI or `distill pause|resume|limits|cancel` does it. */
let t: TestTemporal;
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  t = await startTestTemporal('control');
  teacher = await startTeacherServer({ port: 0, latencyMs: 60 });
  await t.startCpuWorker();
  await t.startGpuWorker();
});
afterAll(async () => {
  await teacher?.close();
  await t?.close();
});

const spec = (name: string) => ({
  name,
  dataset: { source: { type: 'builtin', task: 'arithmetic', count: 100, seed: 9 } },
  teacher: { baseURL: teacher.url, model: 'procedural-arithmetic-teacher', concurrency: 2 },
  sampling: { n: 2, max_tokens: 200 },
  generation: { shardSize: 10, maxShardsInFlight: 1 },
  fineTune: {
    epochs: 1,
    batchSize: 8,
    maxSteps: 2,
    checkpointEvery: 2,
    model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 },
  },
  evaluation: {
    benchmark: { type: 'builtin', task: 'arithmetic', count: 4, seed: 2 },
    k: 1,
    maxNewTokens: 20,
    baseline: false,
  },
  timeouts: { heartbeatSeconds: 5 },
  artifactRoot: path.join(t.tmp, 'artifacts'),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(
  handle: { query: (q: typeof progressQuery) => Promise<RunProgress> },
  ok: (p: RunProgress) => boolean,
): Promise<RunProgress> {
  for (let i = 0; i < 600; i++) {
    const p = await handle.query(progressQuery).catch(() => null);
    if (p && ok(p)) return p;
    await sleep(100);
  }
  throw new Error('condition never met');
}

test('pause stops new shards, limits change while running, resume finishes the run with nothing lost', async () => {
  const handle = await t.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `control-${randomUUID()}`,
    args: [spec('pause')],
  });
  await waitFor(handle, (p) => (p.generation?.shardsDone ?? 0) >= 1);
  await handle.signal(pauseSignal);
  await sleep(1500); // the shard in flight finishes
  const paused = await handle.query(progressQuery);
  await sleep(2000);
  const stillPaused = await handle.query(progressQuery);
  expect(paused.paused).toBe(true);
  expect(stillPaused.generation!.shardsDone).toBe(paused.generation!.shardsDone);
  expect(stillPaused.generation!.shardsDone).toBeLessThan(10);

  const limits = await handle.executeUpdate(setTeacherLimitsUpdate, {
    args: [{ maxShardsInFlight: 4, maxInFlight: 16 }],
  });
  expect(limits).toEqual({ maxShardsInFlight: 4, maxInFlight: 16 });
  await expect(handle.executeUpdate(setTeacherLimitsUpdate, { args: [{ maxInFlight: 0 }] })).rejects.toMatchObject({
    cause: { message: expect.stringMatching(/positive integer/) },
  });

  const before = teacher.stats().inFlightPeak;
  await handle.signal(resumeSignal);
  const summary = (await handle.result()) as RunSummary;
  expect(summary.counts.generate).toMatchObject({ prompts: 100, samples: 200 });
  // With 4 shards × 2 lanes after the update, more requests ran at once than the 2 allowed before it.
  expect(teacher.stats().inFlightPeak).toBeGreaterThan(Math.min(before, 2));
  expect((await handle.query(progressQuery)).teacherLimits).toEqual({ maxShardsInFlight: 4, maxInFlight: 16 });
});

test('cancel stops the run cleanly, keeps its partial artifacts and lists them; the worker stays healthy', async () => {
  const workflowId = `cancel-${randomUUID()}`;
  const handle = await t.client.workflow.start('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [spec('cancel')],
  });
  await waitFor(handle, (p) => (p.generation?.shardsDone ?? 0) >= 2);
  await handle.cancel();
  const err = await handle.result().catch((e) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  const p = await handle.query(progressQuery);
  const files = p.cancelled!.files.map((f) => f.path);
  expect(files).toContain(path.join('prepare', 'prompts.jsonl'));
  expect(files).toContain(path.join('generate', 'shard-00000.jsonl'));
  expect(p.stage).toBe('generate');

  // The same workers take the next run.
  const next = (await t.client.workflow.execute('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `after-cancel-${randomUUID()}`,
    args: [{ ...spec('after'), dataset: { source: { type: 'builtin', task: 'arithmetic', count: 10, seed: 1 } } }],
  })) as RunSummary;
  expect(next.counts.generate!.samples).toBe(20);
});
