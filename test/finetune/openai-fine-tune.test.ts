/**
 * @jest-environment ./test/helpers/outer-realm-env.js
 */
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import { ActivityCancellationDetails } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import {
  createOpenAIFineTune,
  type OpenAIFineTuneInput,
  type OpenAIFineTuneResult,
} from '../../activities/finetune/openai-fine-tune';
import { pathOf, writeJsonlAtomic } from '../../activities/artifacts/store';
import { startTeacherServer, type TeacherServer } from '../../infra/teacher/server';
import { FineTuneSchema } from '../../schemas/run-spec';
import { sftRunDir } from '../helpers/trainer-fixture';

/**
 * The openai fine-tune backend against the local teacher's fine-tuning API over real HTTP; every job really trains
 * the tiny student (micro size: 40 examples, 5 steps). Crashes are Temporal cancellations of the activity: a lost
 * worker (TIMED_OUT / WORKER_SHUTDOWN) leaves the remote job running, a requested cancel stops it.
 */
let api: TeacherServer;
let ftDir: string;
let client: OpenAI;
const KEY_ENV = 'DISTILLERY_TEST_FT_KEY';

beforeAll(async () => {
  ftDir = mkdtempSync(path.join(os.tmpdir(), 'ft-api-'));
  api = await startTeacherServer({ port: 0, fineTuningDir: ftDir, fineTuningThreads: 1, fineTuningDelayMs: 300 });
  client = new OpenAI({ baseURL: api.url, apiKey: 'any' });
});
afterAll(async () => {
  await api.close();
  rmSync(ftDir, { recursive: true, force: true });
});

const fineTune = createOpenAIFineTune({ env: {} });

/** Without apiKeyEnv: the local API needs no key, and none is sent. */
function inputFor(
  runDir: string,
  sft: OpenAIFineTuneInput['sft'],
  baseURL = api.url,
  apiKeyEnv?: string,
): OpenAIFineTuneInput {
  return {
    runDir,
    sft,
    fineTune: FineTuneSchema.parse({
      backend: 'openai',
      openai: {
        baseURL,
        apiKeyEnv,
        model: 'tiny-gpt-micro',
        suffix: 'arith',
        pollSeconds: 0.2,
        hyperparameters: { n_epochs: 1, batch_size: 8 },
      },
    }),
  };
}

/** The server's jobs for one run dir, by the metadata the activity tags them with. */
async function jobsOf(runDir: string) {
  const out = [];
  for await (const j of client.fineTuning.jobs.list({ limit: 100 }))
    if (j.metadata?.distillery_run === path.basename(runDir)) out.push(j);
  return out;
}

/** Starts an attempt and resolves once its heartbeats show a job in `status` (any status when omitted). */
async function attemptUntil(input: OpenAIFineTuneInput, status?: string) {
  const env = new MockActivityEnvironment({ attempt: 1 });
  let seen: { jobId?: string; status?: string } = {};
  env.on('heartbeat', (d: typeof seen) => (seen = d ?? {}));
  const outcome = env.run(fineTune, input).catch((e: Error) => e);
  const t0 = Date.now();
  while (!(seen.jobId && (!status || seen.status === status))) {
    if (Date.now() - t0 > 60_000)
      throw new Error(`no heartbeat with status ${status} within 60 s (last: ${JSON.stringify(seen)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { env, outcome, jobId: seen.jobId };
}

let trainedModel: string | undefined;

test('a job is created, polled to success, and the result names the fine-tuned model', async () => {
  const { runDir, sft } = await sftRunDir(40);
  const env = new MockActivityEnvironment({ attempt: 1 });
  const beats: { status?: string; step?: number; loss?: number }[] = [];
  env.on('heartbeat', (d: (typeof beats)[number]) => beats.push(d));
  const t0 = Date.now();
  const r = (await env.run(fineTune, inputFor(runDir, sft))) as OpenAIFineTuneResult;
  trainedModel = r.fineTunedModel;
  console.log(
    `job ${r.jobId} → ${r.fineTunedModel}: ${r.steps} steps, loss ${r.finalLoss}, ${r.trainedTokens} tokens, ${Date.now() - t0} ms`,
  );

  expect(r.fineTunedModel).toMatch(/^ft:tiny-gpt-micro:arith:/);
  expect(r).toMatchObject({
    studentKind: 'api',
    status: 'succeeded',
    steps: 5,
    resumedJob: false,
    baseModel: 'tiny-gpt-micro',
  });
  expect(r.finalLoss).toBeGreaterThan(0);
  expect(r.trainedTokens).toBeGreaterThan(0);
  const jobs = await jobsOf(runDir);
  expect(jobs).toHaveLength(1);
  expect(jobs[0]).toMatchObject({
    id: r.jobId,
    status: 'succeeded',
    fine_tuned_model: r.fineTunedModel,
    training_file: r.fileId,
  });
  // The job really trained: the model dir (weights + ONNX) is on the server's disk.
  expect(existsSync(path.join(api.fineTunedModelDir(r.fineTunedModel)!, 'model.onnx'))).toBe(true);
  expect(beats.some((b) => b.status === 'running' || b.status === 'succeeded')).toBe(true);

  const report = JSON.parse(readFileSync(pathOf(r.report), 'utf8'));
  expect(report.lossCurve).toHaveLength(5);
  expect(report.lossCurve.at(-1)).toEqual({ step: 5, loss: r.finalLoss });
  expect(report.events.map((e: { message: string }) => e.message)).toContain('The job has successfully completed');

  // Called again (a retry after the result was written): the same result, no new job.
  const again = (await new MockActivityEnvironment({ attempt: 2 }).run(
    fineTune,
    inputFor(runDir, sft),
  )) as OpenAIFineTuneResult;
  expect(again).toEqual(r);
  expect(await jobsOf(runDir)).toHaveLength(1);
});

test('the server answers chat completions from the fine-tuned student and its base model, as a provider does', async () => {
  // A run with backend openai evaluates its baseline (fineTune.openai.model) and its student (the fine-tuned model)
  // on the same endpoint: both must answer, and an unknown model must not.
  expect(trainedModel).toBeDefined();
  const ask = (model: string, seed: number) =>
    client.chat.completions.create({
      model,
      messages: [{ role: 'user', content: 'Compute 12+34.' }],
      n: 3,
      temperature: 0.6,
      top_p: 0.95,
      max_tokens: 40,
      seed,
    });
  for (const model of [trainedModel!, 'tiny-gpt-micro']) {
    const a = await ask(model, 7);
    expect(a.model).toBe(model);
    expect(a.choices).toHaveLength(3);
    for (const c of a.choices) {
      expect(typeof c.message.content).toBe('string');
      expect(['stop', 'length']).toContain(c.finish_reason);
    }
    expect(a.usage!.completion_tokens).toBeGreaterThan(0);
    // the same seed gives the same choices
    expect((await ask(model, 7)).choices.map((c) => c.message.content)).toEqual(
      a.choices.map((c) => c.message.content),
    );
  }
  // greedy and never past max_tokens (bytes: one token per byte)
  const greedy = await client.chat.completions.create({
    model: trainedModel!,
    messages: [{ role: 'user', content: 'Compute 12+34.' }],
    temperature: 0,
    max_tokens: 5,
  });
  expect(Buffer.byteLength(greedy.choices[0]!.message.content ?? '', 'utf8')).toBeLessThanOrEqual(5);
  // a prompt longer than the student's context (128 for the micro model) is the API's context error, not a crash
  await expect(
    client.chat.completions.create({ model: trainedModel!, messages: [{ role: 'user', content: 'x'.repeat(300) }] }),
  ).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
  await expect(ask('ft:tiny-gpt-micro:arith:nosuchjob', 1)).rejects.toMatchObject({
    status: 404,
    code: 'model_not_found',
  });
});

test('a retry after the worker was lost mid-poll resumes the recorded job, never creates a second', async () => {
  const { runDir, sft } = await sftRunDir(40);
  const first = await attemptUntil(inputFor(runDir, sft), 'running');
  first.env.cancel('TIMED_OUT', new ActivityCancellationDetails({ timedOut: true }));
  const failure = (await first.outcome) as Error;
  expect(failure.name).toBe('CancelledFailure');
  const marker = JSON.parse(readFileSync(path.join(runDir, 'finetune', 'openai-job.json'), 'utf8'));
  expect(marker.jobId).toBe(first.jobId);
  // A lost worker does not cancel the remote job.
  expect((await client.fineTuning.jobs.retrieve(first.jobId!)).status).not.toBe('cancelled');

  const r = (await new MockActivityEnvironment({ attempt: 2 }).run(
    fineTune,
    inputFor(runDir, sft),
  )) as OpenAIFineTuneResult;
  expect(r).toMatchObject({ jobId: first.jobId, resumedJob: true, status: 'succeeded', steps: 5 });
  expect(await jobsOf(runDir)).toHaveLength(1);
});

test('a job created just before a crash (its id never written down) is found again by its metadata', async () => {
  const { runDir, sft } = await sftRunDir(40);
  const first = await attemptUntil(inputFor(runDir, sft));
  first.env.cancel('WORKER_SHUTDOWN', new ActivityCancellationDetails({ workerShutdown: true }));
  await first.outcome;
  // As if the worker died between jobs.create and writing the marker: nothing on disk names the file or the job.
  await fs.rm(path.join(runDir, 'finetune', 'openai-job.json'));
  const uploadsBefore = (await client.files.list({ purpose: 'fine-tune' })).data.length;

  const r = (await new MockActivityEnvironment({ attempt: 2 }).run(
    fineTune,
    inputFor(runDir, sft),
  )) as OpenAIFineTuneResult;
  expect(r).toMatchObject({ jobId: first.jobId, resumedJob: true, status: 'succeeded' });
  expect(await jobsOf(runDir)).toHaveLength(1);
  expect((await client.files.list({ purpose: 'fine-tune' })).data.length).toBe(uploadsBefore);
});

test('cancelling the activity cancels the remote job', async () => {
  const { runDir, sft } = await sftRunDir(40);
  const first = await attemptUntil(inputFor(runDir, sft), 'running');
  first.env.cancel();
  const failure = (await first.outcome) as Error;
  expect(failure.name).toBe('CancelledFailure');
  expect(failure.message).toContain(first.jobId);
  const job = await client.fineTuning.jobs.retrieve(first.jobId!);
  expect(job.status).toBe('cancelled');
  expect(job.fine_tuned_model).toBeNull();
});

test('a job that fails (invalid training file) is a non-retryable failure with the API message; a rerun starts a new job', async () => {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'finetune-bad-'));
  const rows = Array.from({ length: 12 }, (_, i) => ({
    id: `p${i}`,
    messages: [{ role: 'user', content: `${i} + 1 = ?` }],
  }));
  const sft = await writeJsonlAtomic(path.join(runDir, 'filter', 'sft.jsonl'), rows);
  const run = () =>
    new MockActivityEnvironment({ attempt: 1 }).run(fineTune, inputFor(runDir, sft)).catch((e: Error) => e);

  const failure = (await run()) as Error & { nonRetryable?: boolean; type?: string };
  expect(failure.name).toBe('ApplicationFailure');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.type).toBe('FineTuneJobFailed');
  expect(failure.message).toMatch(
    /invalid_training_file.*an example needs a user message followed by an assistant message/,
  );
  const [job] = await jobsOf(runDir);
  expect(job!.status).toBe('failed');
  expect(failure.message).toContain(job!.id);

  // The stage run again (say, after a workflow reset): the failed job is not reported again, a new one is made.
  const second = (await run()) as Error & { type?: string };
  expect(second.message).not.toContain(job!.id);
  expect(await jobsOf(runDir)).toHaveLength(2);
});

test('a refused, missing or unlisted API key fails fast and non-retryably, naming apiKeyEnv; the last two before any request', async () => {
  const secured = await startTeacherServer({ port: 0, apiKey: 'right', fineTuningDir: ftDir });
  try {
    const { runDir, sft } = await sftRunDir(12);
    const policy = { DISTILLERY_KEY_POLICY: JSON.stringify({ [KEY_ENV]: ['127.0.0.1'] }) };
    for (const [env, type, says, requests] of [
      [{ ...policy, [KEY_ENV]: 'wrong' }, 'FineTuneApiAuth', /key in DISTILLERY_TEST_FT_KEY .* was refused/, 'some'],
      [
        policy,
        'ApiKeyNotSet',
        /fineTune\.openai\.apiKeyEnv names DISTILLERY_TEST_FT_KEY, .* is not set on this worker/,
        'none',
      ],
      // set, even to the right key, but not listed in the worker's key policy: never sent
      [
        { [KEY_ENV]: 'right' },
        'ApiKeyNotAllowed',
        /fineTune\.openai\.apiKeyEnv names the environment variable DISTILLERY_TEST_FT_KEY, which the worker's key policy does not list/,
        'none',
      ],
    ] as const) {
      const t0 = Date.now();
      const before = secured.stats().requests;
      const failure = (await new MockActivityEnvironment()
        .run(createOpenAIFineTune({ env }), inputFor(runDir, sft, secured.url, KEY_ENV))
        .catch((e: Error) => e)) as Error & {
        nonRetryable?: boolean;
        type?: string;
      };
      expect(failure.name).toBe('ApplicationFailure');
      expect(failure).toMatchObject({ nonRetryable: true, type });
      expect(failure.message).toMatch(says);
      expect(Date.now() - t0).toBeLessThan(5000);
      if (requests === 'none') expect(secured.stats().requests).toBe(before);
      else expect(secured.stats().requests).toBeGreaterThan(before);
    }
    expect(secured.stats().fineTuningJobsCreated).toBe(0);
  } finally {
    await secured.close();
  }
});
