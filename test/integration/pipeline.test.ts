/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { startTeacherServer } from '../../infra/teacher/server';
import { findTemporalCli, freePort } from '../../infra/temporal';
import { pathOf, readJsonl } from '../../activities/artifacts/store';
import type { SampleRow } from '../../schemas/artifact';
import type { RunSummary } from '../../workflows/distillation';
import { progressQuery, type RunProgress } from '../../workflows/messages';
import { workflowBundlePath } from '../../workers/build-bundle';
import { startTestTemporal, type TestTemporal } from '../helpers/stack';

/**
 * End to end on a real Temporal dev server with real worker processes (dist/workers/*.js), a real
 * OpenAI-compatible teacher over HTTP, a real trainer subprocess and the ONNX student in onnxruntime-node.
 */

let t: TestTemporal;
let teacher: Awaited<ReturnType<typeof startTeacherServer>>;
let metricsUrl: string;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  t = await startTestTemporal('pipeline');
  teacher = await startTeacherServer({ port: 0 });
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${metricsAddress}/metrics`;
  await t.startCpuWorker({ DISTILLERY_METRICS_ADDRESS: metricsAddress });
  await t.startGpuWorker();
});

afterAll(async () => {
  await teacher?.close();
  await t?.close();
});

function spec(name: string, overrides: Record<string, unknown> = {}) {
  return {
    name,
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 60, seed: 1 } },
    teacher: { baseURL: teacher.url, model: 'procedural-arithmetic-teacher', concurrency: 4 },
    sampling: { n: 2, temperature: 1.0, top_p: 0.95, max_tokens: 200, seed: 3 },
    verifier: { type: 'math', keepPerPrompt: 2 },
    fineTune: {
      epochs: 1,
      batchSize: 8,
      maxSteps: 12,
      checkpointEvery: 5,
      model: { dModel: 64, nLayer: 2, nHead: 2, maxLen: 256 },
    },
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic', count: 16, seed: 2 }, k: 2, maxNewTokens: 80 },
    // A tiny history budget, so that the generation child really continues as new during the test.
    generation: { shardSize: 10, maxShardsInFlight: 2, maxHistoryEvents: 20 },
    timeouts: { heartbeatSeconds: 5 },
    artifactRoot: path.join(t.tmp, 'artifacts'),
    ...overrides,
  };
}

async function sampleIds(summary: RunSummary): Promise<string[]> {
  const ids: string[] = [];
  for await (const row of readJsonl<SampleRow>(summary.artifacts.samples!)) ids.push(row.id);
  return ids;
}

test('a run started the way the Web UI starts it (one raw JSON payload) goes from spec to evaluation summary', async () => {
  const workflowId = `ui-start-${randomUUID()}`;
  // A gate that asks 5 points of pass@1 more than the baseline: twelve steps of a tiny student cannot give that.
  const raw = {
    ...spec('ui-started'),
    evaluation: { ...spec('x').evaluation, gate: { minImprovement: 0.05, maxRegression: 0.01 } },
  };
  // Exactly what the UI's "Start Workflow" form sends: workflow type, task queue, one json/plain payload.
  await t.client.connection.workflowService.startWorkflowExecution({
    namespace: 'default',
    workflowId,
    requestId: randomUUID(),
    identity: 'temporal-web-ui (test)',
    workflowType: { name: 'distillationWorkflow' },
    taskQueue: { name: 'distillery' },
    input: {
      payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(raw)) }],
    },
  });
  const handle = t.client.workflow.getHandle(workflowId);
  // Scrape the CPU worker's Prometheus endpoint while the run is going: the project's metrics are there.
  let scraped = '';
  let scrapedWhileRunning = false;
  for (let i = 0; i < 300 && !scraped.includes('distillery_samples_generated'); i++) {
    scraped = await fetch(metricsUrl)
      .then((r) => r.text())
      .catch(() => '');
    scrapedWhileRunning = (await handle.describe()).status.name === 'RUNNING';
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(scrapedWhileRunning).toBe(true);
  expect(scraped).toMatch(/distillery_samples_generated/);
  expect(scraped).toMatch(/temporal_/); // the SDK runtime's own metrics, from the same endpoint
  const summary = (await handle.result()) as RunSummary;
  const after = await fetch(metricsUrl).then((r) => r.text());
  for (const name of [
    'distillery_teacher_tokens',
    'distillery_verified_samples',
    'distillery_acceptance_rate',
    'distillery_stage_duration_seconds',
  ])
    expect(after).toContain(name);

  const c = summary.counts;
  expect(c.prepare).toMatchObject({ in: 60, kept: 60, quarantined: 0, shards: 6 });
  expect(c.generate).toMatchObject({ prompts: 60, samples: 120 });
  // Every stage accounts for its rows.
  expect(c.verify!.in).toBe(120);
  expect(c.verify!.accepted! + c.verify!.rejected!).toBe(120);
  expect(c.verify!.accepted).toBeGreaterThan(60); // temperature 1 makes some mistakes, most answers are right
  expect(c.verify!.rejected).toBeGreaterThan(0); // … and the verifier really rejects the wrong ones
  expect(c.filter!.in).toBe(c.verify!.accepted);
  expect(c.filter!.kept! + c.filter!.rejected!).toBe(c.filter!.in);
  expect(summary.tokens.completion).toBeGreaterThan(0);

  const ids = await sampleIds(summary);
  expect(new Set(ids).size).toBe(120);

  // The trainer really trained: 12 steps, a loss, a model and its ONNX export.
  expect(summary.fineTune.steps).toBe(12);
  expect(summary.fineTune.finalLoss).toEqual(expect.any(Number));
  expect(existsSync(path.join(summary.fineTune.modelDir, 'model.onnx'))).toBe(true);
  const report = JSON.parse(readFileSync(pathOf(summary.artifacts.trainReport!), 'utf8'));
  expect(JSON.stringify(report)).toContain('loss');

  // The student was scored by the verifier on held-out items, baseline and after.
  expect(summary.evaluation.items).toBe(16);
  expect(summary.evaluation.scores.map((s) => s.name)).toEqual(['baseline', 'student']);
  // Each model's score and its outcomes are what its rows in results.jsonl say: counted here from the file.
  const evalRows: { model: string; prompt: string; correct: boolean; extracted: string | null }[] = [];
  for await (const r of readJsonl<(typeof evalRows)[number]>(summary.artifacts.evalResults!)) evalRows.push(r);
  expect(evalRows).toHaveLength(2 * 16 * 2);
  for (const s of summary.evaluation.scores) {
    const mine = evalRows.filter((r) => r.model === s.name);
    const correct = mine.filter((r) => r.correct).length;
    const noAnswer = mine.filter((r) => !r.correct && r.extracted === null).length;
    expect({
      name: s.name,
      samples: s.samples,
      correct: s.correct,
      incorrect: s.incorrect,
      noAnswer: s.noAnswer,
    }).toEqual({ name: s.name, samples: 32, correct, incorrect: 32 - correct - noAnswer, noAnswer });
    expect(s.pass1).toBeCloseTo(correct / 32, 12); // k samples for every item: pass@1 is the fraction correct
    expect(c[`evaluate.${s.name}`]).toMatchObject({ correct, noAnswer });
  }
  // Every model was asked the same prompt, the one the student was trained on (problem + R1's instruction).
  const trainPrompt = (await fs.readFile(pathOf(summary.artifacts.prompts!), 'utf8')).split('\n')[0]!;
  const shape = (p: string) => p.replace(/\d+/g, 'N');
  expect(new Set(evalRows.map((r) => shape(r.prompt)))).toEqual(new Set([shape(JSON.parse(trainPrompt).prompt)]));

  // The generation child continued as new (its first run is closed as such) and lost no shard on the way.
  const firstGenerationRun = await t.client.workflow.getHandle(`${workflowId}-generate`).describe();
  expect(firstGenerationRun.status.name).toBe('COMPLETED');
  const runs = await t.client.workflow.list({ query: `WorkflowId = "${workflowId}-generate"` });
  const statuses: string[] = [];
  for await (const r of runs) statuses.push(r.status.name);
  expect(statuses).toContain('CONTINUED_AS_NEW');

  // The gate took the decision the scores call for: promote only with 5 points over the baseline; a student that did
  // not improve by that much is not promoted and no pointer is written.
  const [baseline, student] = summary.evaluation.scores;
  const improved = student!.pass1 - baseline!.pass1 >= 0.05 - 1e-9 && student!.pass1 - baseline!.pass1 >= -0.01 - 1e-9;
  expect(summary.gate!.promote).toBe(improved);
  expect(summary.gate!.pointer !== null).toBe(improved);
  expect(existsSync(path.join(t.tmp, 'artifacts', 'promoted', 'ui-started.json'))).toBe(improved);
  expect(summary.gate!.checks.find((ch) => ch.check === 'primary_improvement')).toMatchObject({
    pass: improved,
    threshold: 0.05,
  });
  expect(summary.gate!.reasons.length).toBeGreaterThan(0);
  expect(existsSync(pathOf(summary.artifacts.reportHtml!))).toBe(true);
  expect(readFileSync(pathOf(summary.artifacts.reportHtml!), 'utf8')).toContain('<svg');

  const progress = await handle.query<RunProgress>(progressQuery);
  expect(progress.stage).toBe('done');
  expect(progress.acceptanceRate).toBeCloseTo(summary.acceptanceRate);

  // The run's history replays against the current workflow code (determinism guard on a fresh run).
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath } }, history, workflowId);
  if (process.env.DISTILLERY_RECORD_HISTORY) {
    // The CLI writes the same JSON the Web UI downloads (protobufjs's toJSON does not work under jest's registry).
    const json = execFileSync(findTemporalCli(), [
      'workflow',
      'show',
      '--workflow-id',
      workflowId,
      '--address',
      t.server.address,
      '--output',
      'json',
    ]);
    await fs.writeFile(path.join(__dirname, '..', 'fixtures', 'distillation-history.json'), json);
  }
});

test('fineTune.backend openai against the local server: its fine-tuning API trains the student, and baseline and student are evaluated on that endpoint', async () => {
  const raw = spec('openai-backend', {
    fineTune: {
      backend: 'openai',
      openai: {
        baseURL: teacher.url,
        model: 'tiny-gpt-micro',
        suffix: 'arith',
        pollSeconds: 0.5,
        hyperparameters: { n_epochs: 1, batch_size: 8 },
      },
    },
  });
  const summary = (await t.client.workflow.execute('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId: `openai-${randomUUID()}`,
    args: [raw],
  })) as RunSummary;
  expect(summary.fineTune.steps).toBeGreaterThan(0);
  expect(summary.evaluation.scores.map((s) => s.name)).toEqual(['baseline', 'student']);
  const rows: { model?: string; name?: string; response?: string }[] = [];
  for await (const r of readJsonl<{ model?: string; name?: string; response?: string }>(summary.artifacts.evalResults!))
    rows.push(r);
  expect(rows).toHaveLength(2 * 16 * 2);
  const job = (await (await fetch(`${teacher.url}/fine_tuning/jobs?limit=100`)).json()) as {
    data: { fine_tuned_model: string | null; metadata?: Record<string, string> }[];
  };
  expect(job.data.some((j) => j.fine_tuned_model?.startsWith('ft:tiny-gpt-micro:arith:'))).toBe(true);
});

test('an invalid spec fails at once, non-retryably, naming every bad field', async () => {
  const bad = {
    ...spec('bad spec!'),
    teacher: { baseURL: 'not a url', model: '', apiKeyEnv: 'sk-live 123' },
    sampling: { n: 0, temperature: 7 },
    evaluation: { benchmark: { type: 'builtin', task: 'arithmetic' }, k: 0 },
  };
  const workflowId = `invalid-${randomUUID()}`;
  const err = await t.client.workflow
    .execute('distillationWorkflow', { taskQueue: 'distillery', workflowId, args: [bad] })
    .catch((e) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.type).toBe('InvalidRunSpec');
  expect(cause.nonRetryable).toBe(true);
  for (const field of [
    'name',
    'teacher.baseURL',
    'teacher.model',
    'teacher.apiKeyEnv',
    'sampling.n',
    'sampling.temperature',
    'evaluation.k',
  ]) {
    expect(cause.message).toContain(`- ${field}:`);
  }
  // It failed before any stage was scheduled: the only activity is the spec's normalisation.
  const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  expect(scheduled).toEqual(['normaliseRunSpec']);
});

test('the CPU worker is SIGKILLed mid-generation; a new worker finishes the run with every sample exactly once', async () => {
  const slow = await startTeacherServer({ port: 0, latencyMs: 120, maxInFlight: 4 });
  try {
    const workflowId = `resume-${randomUUID()}`;
    const raw = spec('resume', {
      dataset: { source: { type: 'builtin', task: 'arithmetic', count: 120, seed: 5 } },
      teacher: { baseURL: slow.url, model: 'procedural-arithmetic-teacher', concurrency: 2 },
      fineTune: {
        epochs: 1,
        batchSize: 8,
        maxSteps: 3,
        checkpointEvery: 3,
        model: { dModel: 32, nLayer: 1, nHead: 2, maxLen: 128 },
      },
      evaluation: {
        benchmark: { type: 'builtin', task: 'arithmetic', count: 8, seed: 2 },
        k: 1,
        maxNewTokens: 40,
        baseline: false,
      },
    });
    const handle = await t.client.workflow.start('distillationWorkflow', {
      taskQueue: 'distillery',
      workflowId,
      args: [raw],
    });
    const cpu = t.workers.find((w) => w.name === 'cpu-worker')!;

    // Wait until generation is under way: a shard finished and another one half written.
    const deadline = Date.now() + 60_000;
    let partialRows = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error('generation never got under way');
      const p = await handle.query<RunProgress>(progressQuery).catch(() => null);
      const dir = path.join(t.tmp, 'artifacts', workflowId, 'generate');
      const partials = existsSync(dir) ? (await fs.readdir(dir)).filter((f) => f.endsWith('.partial')) : [];
      partialRows = 0;
      // A shard that completes between readdir and readFile has renamed its .partial away: it counts as none.
      for (const f of partials)
        partialRows += (await fs.readFile(path.join(dir, f), 'utf8').catch(() => ''))
          .split('\n')
          .filter(Boolean).length;
      if (p?.generation && p.generation.shardsDone >= 1 && partialRows > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    cpu.kill('SIGKILL');
    await cpu.exited;
    t.workers.splice(t.workers.indexOf(cpu), 1);
    await t.startCpuWorker();

    const summary = (await handle.result()) as RunSummary;
    const ids = await sampleIds(summary);
    expect(ids).toHaveLength(240);
    expect(new Set(ids).size).toBe(240);
    const perPrompt = new Map<string, number>();
    for (const id of ids) perPrompt.set(id.split('#')[0]!, (perPrompt.get(id.split('#')[0]!) ?? 0) + 1);
    expect(perPrompt.size).toBe(120);
    expect([...perPrompt.values()].every((n) => n === 2)).toBe(true);
    // The retried shard picked up what the killed attempt had written instead of redoing it.
    expect(summary.counts.generate!.resumedSamples).toBeGreaterThan(0);
    expect(summary.evaluation.scores).toHaveLength(1);
  } finally {
    await slow.close();
  }
});

test('workers shut down gracefully on SIGTERM', async () => {
  const extra = await t.startGpuWorker();
  const cpuExtra = await t.startCpuWorker();
  extra.kill('SIGTERM');
  cpuExtra.kill('SIGTERM');
  expect(await extra.exited).toBe(0);
  expect(await cpuExtra.exited).toBe(0);
});

test('a budget stops generation cleanly; the finished shards go on through the pipeline', async () => {
  const workflowId = `budget-${randomUUID()}`;
  const raw = spec('budget', {
    dataset: { source: { type: 'builtin', task: 'arithmetic', count: 80, seed: 6 } },
    // About 100 tokens per request: 10 prompts a shard cost ~1000 tokens ≈ $1 at $1,000 per 1M tokens.
    teacher: {
      baseURL: teacher.url,
      model: 'procedural-arithmetic-teacher',
      concurrency: 2,
      pricing: { inputPerMTokens: 1000, outputPerMTokens: 1000 },
      budgetUSD: 1.5,
    },
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
  });
  const summary = (await t.client.workflow.execute('distillationWorkflow', {
    taskQueue: 'distillery',
    workflowId,
    args: [raw],
  })) as RunSummary;
  const g = summary.counts.generate!;
  expect(g.stoppedByBudget).toBe(1);
  expect(g.shardsDone).toBeGreaterThanOrEqual(1);
  expect(g.shardsDone).toBeLessThan(8);
  expect(g.costUSD).toBeGreaterThanOrEqual(1.5);
  expect(g.samples).toBe(g.shardsDone! * 10 * 2);
  expect(summary.evaluation.scores).toHaveLength(1);
});
